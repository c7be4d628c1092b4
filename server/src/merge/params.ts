/**
 * The merge engine's vocabulary: the method names, the options of one merge,
 * and every tunable parameter once — its option key, CLI flag, protobuf
 * field, kind, default and check. A method (`method.ts`) lists the parameters
 * it reads; the CLI flags, `tributary merge --help`, the federation's
 * `MergeSpec` and its protobuf conversion are derived from this table and the
 * method registry (`methods/registry.ts`).
 */
import type { TruncationOptions } from "./solvers/truncated-svd.ts";

/** Every merge method the engine implements (each one object in `methods/registry.ts`). */
export const METHODS = [
  "from",
  "lore",
  "fr",
  "fedavg",
  "fedavg-factors",
  "fedit",
  "flora",
  "knots",
  "core-space",
  "rank-partition",
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
  /** KnOTS: how the clients' blocks in the shared basis are combined. */
  readonly knotsCombine: "ties" | "dare-ties" | "mean";
  /** KnOTS: percent of each client's entries kept by magnitude (TIES's top-k). */
  readonly topK: number;
  /** KnOTS: whether the top-k threshold is each client's over the whole adapter (as the KnOTS code) or per module. */
  readonly knotsScope: "adapter" | "module";
  /** Core Space: how the clients' cores are combined. */
  readonly coreCombine: "ties" | "dare-ties" | "mean" | "sum";
  /** KnOTS and Core Space `dare-ties`: DARE's drop probability p on the blocks. */
  readonly dareP: number;
  /**
   * KnOTS with `knotsScope: "adapter"`: each client's top-k magnitude
   * threshold over its whole adapter (`pipeline/knots-thresholds.ts`), in
   * the module's client order; absent = computed per module.
   */
  readonly knotsThresholds?: readonly number[];
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
  /** Central differential privacy (`dp/central-dp.ts`); `undefined` = none. */
  readonly dp?: CentralDp;
}

/**
 * Central DP of a merge: each client's whole update clipped to `clipNorm`
 * (Frobenius norm over the whole adapter), their uniform mean, Gaussian
 * noise of standard deviation `noiseMultiplier · clipNorm / m` on every
 * entry of each module's mean, then the rank-`r` step.
 */
export interface CentralDp {
  readonly clipNorm: number;
  readonly noiseMultiplier: number;
  /** Each client's `min(1, clipNorm / ‖Θ_i‖_F)` over its whole adapter, in the module's client order. */
  readonly clipFactors: readonly number[];
  /** Key of the noise generator, 64 hex digits; each module's noise is drawn from it and the module's name. */
  readonly noiseKey: string;
}

/** The tunable parameters: every option but the method, the rank, the sample counts and the solver tuning. */
export type ParamKey = Exclude<
  keyof MergeOptions,
  "method" | "rank" | "samples" | "truncation" | "dp" | "knotsThresholds"
>;

/** One tunable parameter (see the module comment). */
export interface ParamSpec {
  /** `tributary merge --<flag>`. */
  readonly flag: string;
  /** Field of `tributary.v1.MergeSpec` (protobuf-es name). */
  readonly protoField: string;
  /** How its value is written: a number, an integer, or one of `choices`. */
  readonly kind: "number" | "integer" | "choice";
  readonly choices?: readonly string[];
  /** Default (`undefined`: off). A method may give its own (`MergeMethod.defaults`). */
  readonly default: MergeOptions[ParamKey];
  /** For people: what it is, in messages (`rank cap must be …`). */
  readonly label: string;
  /** The value the help shows after the flag (`X`, `N`, `F`, `exact|als`). */
  readonly placeholder: string;
  /** Whether `value` is allowed, else what it must be (`must be ≥ 0`). */
  readonly rule: (value: never) => string | undefined;
  /** Applies to every method (shown among the common options). */
  readonly common?: boolean;
}

const finite = (v: number) => Number.isFinite(v);
const rule =
  <T>(ok: (v: T) => boolean, text: string) =>
  (v: T) =>
    ok(v) ? undefined : text;

/** Every tunable parameter, once. */
export const PARAMS: Readonly<Record<ParamKey, ParamSpec>> = {
  scale: {
    flag: "scale",
    protoField: "scale",
    kind: "number",
    default: 1,
    label: "scale",
    placeholder: "X",
    rule: rule(finite, "must be finite"),
    common: true,
  },
  seed: {
    flag: "seed",
    protoField: "seed",
    kind: "integer",
    default: 0,
    label: "seed",
    placeholder: "N",
    rule: rule(Number.isInteger, "must be an integer"),
    common: true,
  },
  normBound: {
    flag: "norm-bound",
    protoField: "normBound",
    kind: "number",
    default: undefined,
    label: "norm bound",
    placeholder: "X",
    rule: rule((v?: number) => v === undefined || (finite(v) && v > 0), "must be > 0"),
    common: true,
  },
  normBoundMedian: {
    flag: "norm-bound-median",
    protoField: "normBoundMedianMultiple",
    kind: "number",
    default: undefined,
    label: "norm bound multiple of the median",
    placeholder: "X",
    rule: rule((v?: number) => v === undefined || (finite(v) && v > 0), "must be > 0"),
    common: true,
  },
  normBoundAction: {
    flag: "norm-bound-action",
    protoField: "normBoundAction",
    kind: "choice",
    choices: ["clip", "reject"],
    default: "clip",
    label: "norm bound action",
    placeholder: "clip|reject",
    rule: rule((v: string) => v === "clip" || v === "reject", "must be clip or reject"),
    common: true,
  },
  k: {
    flag: "k",
    protoField: "k",
    kind: "number",
    default: 0.9, // FroM paper, LoRA setting
    label: "k",
    placeholder: "X",
    rule: rule((v: number) => finite(v) && v >= 0, "must be ≥ 0"),
  },
  solver: {
    flag: "solver",
    protoField: "solver",
    kind: "choice",
    choices: ["exact", "als"],
    default: "exact",
    label: "solver",
    placeholder: "exact|als",
    rule: rule((v: string) => v === "exact" || v === "als", "must be exact or als"),
  },
  sigma: {
    flag: "sigma",
    protoField: "sigma",
    kind: "number",
    default: 1,
    label: "sigma",
    placeholder: "X",
    rule: rule((v: number) => finite(v) && v > 0, "must be > 0"),
  },
  iters: {
    flag: "iters",
    protoField: "iters",
    kind: "integer",
    default: 100,
    label: "iters",
    placeholder: "N",
    rule: rule((v: number) => Number.isInteger(v) && v >= 1, "must be a positive integer"),
  },
  tol: {
    flag: "tol",
    protoField: "tol",
    kind: "number",
    default: 1e-6,
    label: "tol",
    placeholder: "X",
    rule: rule((v: number) => finite(v) && v >= 0, "must be ≥ 0"),
  },
  mu: {
    flag: "mu",
    protoField: "mu",
    kind: "number",
    default: 0.01, // LoRE paper, two models
    label: "mu",
    placeholder: "X",
    rule: rule((v: number) => finite(v) && v >= 0, "must be ≥ 0"),
  },
  rankCap: {
    flag: "rank-cap",
    protoField: "rankCap",
    kind: "number",
    default: undefined,
    label: "rank cap",
    placeholder: "F",
    rule: rule((v?: number) => v === undefined || (v > 0 && v <= 1), "must be in (0, 1]"),
  },
  cutoff: {
    flag: "cutoff",
    protoField: "cutoff",
    kind: "number",
    default: 0.1, // FREE-Merging: robust from 10% to 40%
    label: "cutoff",
    placeholder: "F",
    rule: rule((v: number) => finite(v) && v >= 0 && v < 1, "must be in [0, 1)"),
  },
  combine: {
    flag: "combine",
    protoField: "combine",
    kind: "choice",
    choices: ["mean", "sum", "from"],
    default: "mean",
    label: "combine",
    placeholder: "mean|sum|from",
    rule: rule((v: string) => ["mean", "sum", "from"].includes(v), "must be mean, sum or from"),
  },
  density: {
    flag: "density",
    protoField: "density",
    kind: "number",
    default: 0.2, // TIES paper default k = 20%
    label: "density",
    placeholder: "F",
    rule: rule((v: number) => v > 0 && v <= 1, "must be in (0, 1]"),
  },
  drop: {
    flag: "drop",
    protoField: "drop",
    kind: "number",
    default: 0.5,
    label: "drop",
    placeholder: "P",
    rule: rule((v: number) => v >= 0 && v < 1, "must be in [0, 1)"),
  },
  knotsCombine: {
    flag: "knots-combine",
    protoField: "knotsCombine",
    kind: "choice",
    choices: ["ties", "dare-ties", "mean"],
    default: "ties",
    label: "knots combine",
    placeholder: "ties|dare-ties|mean",
    rule: rule((v: string) => ["ties", "dare-ties", "mean"].includes(v), "must be ties, dare-ties or mean"),
  },
  topK: {
    flag: "top-k",
    protoField: "topK",
    kind: "number",
    default: 20, // KnOTS's ViT configurations (topK 20)
    label: "top-k",
    placeholder: "P",
    rule: rule((v: number) => v > 0 && v <= 100, "must be a percent in (0, 100]"),
  },
  knotsScope: {
    flag: "knots-scope",
    protoField: "knotsScope",
    kind: "choice",
    choices: ["adapter", "module"],
    default: "adapter",
    label: "knots scope",
    placeholder: "adapter|module",
    rule: rule((v: string) => v === "adapter" || v === "module", "must be adapter or module"),
  },
  coreCombine: {
    flag: "core-combine",
    protoField: "coreCombine",
    kind: "choice",
    choices: ["ties", "dare-ties", "mean", "sum"],
    default: "ties",
    label: "core combine",
    placeholder: "ties|dare-ties|mean|sum",
    rule: rule(
      (v: string) => ["ties", "dare-ties", "mean", "sum"].includes(v),
      "must be ties, dare-ties, mean or sum",
    ),
  },
  dareP: {
    flag: "dare-p",
    protoField: "dareP",
    kind: "number",
    default: 0.5,
    label: "dare-p",
    placeholder: "P",
    rule: rule((v: number) => v >= 0 && v < 1, "must be in [0, 1)"),
  },
};

/** The parameter keys, in the order of {@link PARAMS}. */
export const PARAM_KEYS = Object.keys(PARAMS) as ParamKey[];
