/** Pieces shared by the merge methods: weights, output rank, linear combinations. */
import type { FactorStack } from "../factor-stack.ts";
import { columnCoefficients } from "../factor-stack.ts";
import {
  clientNorm2F32,
  clientNorms2FromGrams,
  combinationNorm2,
  type StackGrams,
  stackGrams,
} from "../grams.ts";
import type { MergeOptions } from "../params.ts";
import { chooseRoute, concatenate, type Truncation, truncateStack } from "../solvers/truncated-svd.ts";
import type { MergedLora, ModuleGroup, ModuleMergeResult, ModuleMeta } from "../types.ts";

/** Output rank of a module: the requested one, else the largest input rank. */
export function outputRank(group: ModuleMeta, opts: MergeOptions): number {
  if (typeof opts.rank === "number") return Math.min(opts.rank, group.dOut, group.dIn);
  return Math.max(1, ...group.clients.map((c) => c.rank));
}

/** `w / Σ w`, or uniform when every weight is 0. */
export function normalise(w: readonly number[]): number[] {
  const total = w.reduce((a, b) => a + b, 0);
  if (!(total > 0)) return w.map(() => 1 / w.length);
  return w.map((x) => x / total);
}

/** FroM's normalised weights `ŵ_i ∝ ‖Θ_i‖_F^k`, with a zero update weighted 0 whatever `k` is. */
export function frobeniusWeights(norms2: readonly number[], k: number): number[] {
  // Scaled by the largest norm (in logs) so that large k cannot overflow;
  // normalising makes the scale irrelevant.
  const logs = norms2.map((n2) => (n2 > 0 ? Math.log(n2) : Number.NEGATIVE_INFINITY));
  const top = Math.max(...logs);
  return normalise(logs.map((l) => (l === Number.NEGATIVE_INFINITY ? 0 : Math.exp((k / 2) * (l - top)))));
}

/** FedAvg's coefficients `n_i / Σ n_j` (equal when no counts are given). */
export function sampleWeights(
  clients: number,
  samples: readonly number[] | undefined,
  module: string,
): number[] {
  if (samples === undefined) return new Array(clients).fill(1 / clients);
  if (samples.length !== clients) {
    throw new RangeError(`${module}: ${samples.length} sample counts for ${clients} clients`);
  }
  return normalise([...samples]);
}

/** Multiplies a merged module's task vector by `scale` (folded into `B`). */
export function scaled(m: MergedLora, scale: number): MergedLora {
  if (scale === 1) return m;
  const b = new Float32Array(m.b.length);
  for (let i = 0; i < b.length; i++) b[i] = m.b[i] * scale;
  return { ...m, b };
}

/** `Σ_i w_i ‖Θ_i‖²` from the clients' squared norms: the weighted objective's constant. */
export function weightedNorm2(weights: readonly number[], norms2: readonly number[]): number {
  return weights.reduce((s, w, i) => s + w * norms2[i], 0);
}

/**
 * {@link linearMerge} of `M = Σ w_i Θ_i` for normalised `weights`, reporting
 * `Σ w_i ‖BA − Θ_i‖²`; `norms2` (each client's `‖Θ_i‖²`) give its constant
 * and go to the solver.
 */
export function weightedMerge(
  meta: ModuleMeta,
  stack: FactorStack,
  weights: number[],
  norms2: readonly number[],
  opts: MergeOptions,
  grams?: StackGrams,
): ModuleMergeResult {
  return linearMerge(meta, stack, weights, opts, weights, weightedNorm2(weights, norms2), grams, norms2);
}

/**
 * Merges `M = Σ c_i Θ_i` (terms of `stack`) at the module's output rank, or
 * exactly by concatenation for `rank: "full"`, then multiplies by `scale`.
 * When `objectiveWeights` (normalised, summing to 1) and `Σ w_i ‖Θ_i‖²` are
 * given, reports `Σ w_i ‖BA − Θ_i‖² = ‖BA − M‖² + Σ w_i ‖Θ_i‖² − ‖M‖²`.
 * `clientNorms2` (each client's `‖Θ_i‖²`, when known) goes to the solver.
 */
export function linearMerge(
  group: ModuleMeta,
  stack: FactorStack,
  coeffs: readonly number[],
  opts: MergeOptions,
  weightsReport: number[],
  weightedNorm2?: number,
  precomputed?: StackGrams,
  clientNorms2?: readonly number[],
): ModuleMergeResult {
  if (opts.rank === "full") {
    const grams = precomputed ?? stackGrams(stack);
    const norm2 = combinationNorm2(grams, columnCoefficients(stack, coeffs));
    return {
      name: group.name,
      merged: scaled(concatenate(stack, coeffs), opts.scale),
      report: {
        weights: weightsReport,
        objective: weightedNorm2 === undefined ? null : weightedNorm2 - norm2,
        residual: 0,
        iterations: 0,
        solver: "concat",
      },
    };
  }
  const t = truncateStack(
    stack,
    coeffs,
    outputRank(group, opts),
    { seed: opts.seed, ...opts.truncation },
    precomputed,
    clientNorms2,
  );
  return {
    name: group.name,
    merged: scaled(t.merged, opts.scale),
    report: {
      weights: weightsReport,
      objective: weightedNorm2 === undefined ? null : objectiveOf(t, weightedNorm2),
      residual: t.residual,
      iterations: t.iterations,
      solver: t.solver,
    },
  };
}

/**
 * `Σ w_i ‖BA − Θ_i‖² = ‖M − BA‖² + Σ w_i ‖Θ_i‖² − ‖M‖²`, which for the
 * projection `BA` of `M` onto its top singular directions is also
 * `Σ w_i ‖Θ_i‖² − Σ σ_j²` (the form used when `‖M‖²` is not known).
 */
function objectiveOf(t: Truncation, weightedNorm2: number): number {
  if (t.residual === null || t.norm2 === null) return weightedNorm2 - t.sigma2.reduce((x, y) => x + y, 0);
  return t.residual + weightedNorm2 - t.norm2;
}

/**
 * The stack's Gram matrices when the chosen solver route will need them
 * (then per-client norms come free from their diagonal blocks), else
 * `undefined` and norms from each client's own `r × r` Grams — float32
 * device products either way, as the Grams' diagonal blocks are.
 */
export function gramsAndNorms(
  group: ModuleGroup,
  stack: FactorStack,
  opts: MergeOptions,
): { grams: StackGrams | undefined; norms2: number[] } {
  const needs =
    opts.rank === "full" ||
    (opts.method !== "from" || opts.solver === "exact"
      ? ["core", "subspace"].includes(
          chooseRoute(group.dOut, group.dIn, stack.width, outputRank(group, opts), opts.truncation),
        )
      : false);
  if (!needs)
    return {
      grams: undefined,
      norms2: group.clients.map((c) => clientNorm2F32(c, group.dOut, group.dIn)),
    };
  const grams = stackGrams(stack);
  return { grams, norms2: clientNorms2FromGrams(stack, grams) };
}
