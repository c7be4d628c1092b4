/**
 * Merge methods and their parameters, with the papers' defaults, validated
 * once before any math runs.
 */
import { MergeOptionsError } from "./errors.ts";
import type { TruncationOptions } from "./solvers/truncated-svd.ts";

/** Every merge method the engine implements. */
export const METHODS = [
  "from",
  "lore",
  "fr",
  "fedavg",
  "fedavg-factors",
  "task-arithmetic",
  "ties",
  "dare",
  "median",
] as const;
/** A merge method name. */
export type MethodName = (typeof METHODS)[number];

/** Fully resolved options of one merge. */
export interface MergeOptions {
  readonly method: MethodName;
  /** Output rank per module; `undefined` = the largest input rank of that module; `"full"` = exact concatenation. */
  readonly rank: number | "full" | undefined;
  /** Multiplier of the merged task vector (FroM's α, task arithmetic / LoRE / TIES / DARE λ). */
  readonly scale: number;
  /** FroM exponent `k` in `w_i = ‖Θ_i‖_F^k`. */
  readonly k: number;
  /** FroM rank-`r` solver. */
  readonly solver: "exact" | "als";
  /** ALS: std-dev of the Gaussian init of `A`. */
  readonly sigma: number;
  /** Iteration cap of ALS / LoRE. */
  readonly iters: number;
  /** Relative convergence tolerance of ALS / LoRE (0 = run to `iters` or the paper's stopping rule). */
  readonly tol: number;
  readonly seed: number;
  /** LoRE: SVT threshold μ. */
  readonly mu: number;
  /** LoRE: optional cap on each δ_i's rank, as a fraction of `min(dOut, dIn)`. */
  readonly rankCap: number | undefined;
  /** FR: fraction of lowest frequencies removed. */
  readonly cutoff: number;
  /** FR / DARE: how filtered task vectors are combined. */
  readonly combine: "mean" | "sum" | "from";
  /** TIES: fraction of largest-magnitude entries kept per client. */
  readonly density: number;
  /** DARE: drop probability p. */
  readonly drop: number;
  /** Per-client sample counts (FedAvg weights); `undefined` = equal. */
  readonly samples: readonly number[] | undefined;
  /** Tuning of the rank-`r` solver. */
  readonly truncation: TruncationOptions;
  /** Absolute per-module bound on a client's `‖Θ_i‖_F` (see `norm-bound.ts`); `undefined` = none. */
  readonly normBound: number | undefined;
  /** Bound as a multiple of the module's median client norm; `undefined` = none. */
  readonly normBoundMedian: number | undefined;
  /** What happens to a client above the bound: `clip` (rescaled to it) or `reject` (left out). */
  readonly normBoundAction: "clip" | "reject";
}

/** Method-specific defaults (papers' values where they give one). */
export function defaultOptions(method: MethodName): MergeOptions {
  return {
    method,
    rank: undefined,
    scale: 1,
    k: 0.9, // FroM paper, LoRA setting
    solver: "exact",
    sigma: 1,
    iters: method === "lore" ? 50 : 100,
    tol: 1e-6,
    seed: 0,
    mu: 0.01, // LoRE paper, two models
    rankCap: undefined,
    cutoff: 0.1, // FREE-Merging: robust from 10% to 40%
    combine: "mean",
    density: 0.2, // TIES paper default k = 20%
    drop: 0.5,
    samples: undefined,
    truncation: {},
    normBound: undefined,
    normBoundMedian: undefined,
    normBoundAction: "clip",
  };
}

/**
 * Defaults overlaid with `partial`, validated.
 *
 * @example
 * const opts = resolveOptions({ method: "from", rank: 16, k: 0.9 });
 */
export function resolveOptions(
  partial: Omit<Partial<MergeOptions>, "method"> & { method: string },
): MergeOptions {
  if (!(METHODS as readonly string[]).includes(partial.method)) {
    throw new MergeOptionsError(
      `unknown merge method "${partial.method}" (expected one of ${METHODS.join(", ")})`,
    );
  }
  const defined = Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined));
  const o: MergeOptions = { ...defaultOptions(partial.method as MethodName), ...defined } as MergeOptions;
  const check = (ok: boolean, what: string) => {
    if (!ok) throw new MergeOptionsError(`${o.method}: ${what}`);
  };
  check(
    o.rank === undefined || o.rank === "full" || (Number.isInteger(o.rank) && o.rank >= 1),
    `rank must be a positive integer or "full", got ${o.rank}`,
  );
  check(Number.isFinite(o.scale), `scale must be finite, got ${o.scale}`);
  check(Number.isFinite(o.k) && o.k >= 0, `k must be ≥ 0, got ${o.k}`);
  check(o.solver === "exact" || o.solver === "als", `solver must be exact or als, got ${o.solver}`);
  check(Number.isFinite(o.sigma) && o.sigma > 0, `sigma must be > 0, got ${o.sigma}`);
  check(Number.isInteger(o.iters) && o.iters >= 1, `iters must be a positive integer, got ${o.iters}`);
  check(Number.isFinite(o.tol) && o.tol >= 0, `tol must be ≥ 0, got ${o.tol}`);
  check(Number.isInteger(o.seed), `seed must be an integer, got ${o.seed}`);
  check(Number.isFinite(o.mu) && o.mu >= 0, `mu must be ≥ 0, got ${o.mu}`);
  check(
    o.rankCap === undefined || (o.rankCap > 0 && o.rankCap <= 1),
    `rank cap must be in (0, 1], got ${o.rankCap}`,
  );
  check(
    Number.isFinite(o.cutoff) && o.cutoff >= 0 && o.cutoff < 1,
    `cutoff must be in [0, 1), got ${o.cutoff}`,
  );
  check(["mean", "sum", "from"].includes(o.combine), `combine must be mean, sum or from, got ${o.combine}`);
  check(
    o.normBound === undefined || (Number.isFinite(o.normBound) && o.normBound > 0),
    `norm bound must be > 0, got ${o.normBound}`,
  );
  check(
    o.normBoundMedian === undefined || (Number.isFinite(o.normBoundMedian) && o.normBoundMedian > 0),
    `norm bound multiple of the median must be > 0, got ${o.normBoundMedian}`,
  );
  check(
    o.normBoundAction === "clip" || o.normBoundAction === "reject",
    `norm bound action must be clip or reject, got ${o.normBoundAction}`,
  );
  check(o.method !== "dare" || o.combine !== "from", "dare combines with mean or sum");
  check(o.density > 0 && o.density <= 1, `density must be in (0, 1], got ${o.density}`);
  check(o.drop >= 0 && o.drop < 1, `drop must be in [0, 1), got ${o.drop}`);
  check(
    o.samples === undefined || o.samples.every((s) => Number.isFinite(s) && s >= 0),
    "sample counts must be finite and ≥ 0",
  );
  check(
    !((o.method === "ties" || o.method === "dare") && o.rank === "full"),
    `${o.method} produces a dense update; choose a numeric rank`,
  );
  return o;
}
