/**
 * FroM (papers/FroM.txt): Frobenius-norm-weighted merging.
 * Weights `ŵ_i = ‖Θ_i‖_F^k / Σ_j ‖Θ_j‖_F^k` per module (Eq. 5); the rank-`r`
 * result minimises Eq. 6, `Σ ŵ_i ‖BA − Θ_i‖²`, whose global optimum is the
 * truncated SVD of `M = Σ ŵ_i Θ_i` (`solver: "exact"`), or is approached by
 * the paper's Algorithm 1 (`solver: "als"`). The result is scaled by α.
 */
import { type FactorStack, stackModule } from "../factor-stack.ts";
import type { StackGrams } from "../grams.ts";
import type { MergeMethod } from "../method.ts";
import type { MergeOptions } from "../params.ts";
import { alsStack } from "../solvers/als.ts";
import type { ModuleGroup, ModuleMergeResult, ModuleMeta } from "../types.ts";
import {
  frobeniusWeights,
  gramsAndNorms,
  outputRank,
  scaled,
  weightedMerge,
  weightedNorm2,
} from "./common.ts";

/**
 * FroM's exact solver on `stack` (the module's clients, held or streamed),
 * whose clients' squared norms are `norms2`.
 */
export function fromOnStack(
  meta: ModuleMeta,
  stack: FactorStack,
  norms2: readonly number[],
  opts: MergeOptions,
  grams?: StackGrams,
): ModuleMergeResult {
  return weightedMerge(meta, stack, frobeniusWeights(norms2, opts.k), norms2, opts, grams);
}

/** Merges one module with FroM. */
export function mergeFrom(group: ModuleGroup, opts: MergeOptions): ModuleMergeResult {
  const stack = stackModule(group);
  const { grams, norms2 } = gramsAndNorms(group, stack, opts);
  if (opts.solver === "exact" || opts.rank === "full") return fromOnStack(group, stack, norms2, opts, grams);
  const weights = frobeniusWeights(norms2, opts.k);
  const als = alsStack(stack, weights, weightedNorm2(weights, norms2), {
    rank: outputRank(group, opts),
    sigma: opts.sigma,
    iters: opts.iters,
    tol: opts.tol,
    seed: opts.seed,
  });
  return {
    name: group.name,
    merged: scaled(als.merged, opts.scale),
    report: { weights, objective: als.loss, residual: null, iterations: als.iterations, solver: "als" },
  };
}

/** FroM, as the registry lists it. */
export const fromMethod: MergeMethod = {
  name: "from",
  title: "FroM",
  summary: "Frobenius-norm-weighted merge, weights ‖Θ_i‖^k; exact rank-r optimum or the paper's ALS",
  params: ["k", "solver", "sigma", "iters", "tol"],
  denseWeights: "frobenius",
  usesSamples: false,
  merge: mergeFrom,
  streamed: {
    when: (o) => o.solver === "exact",
    merge: (meta, stack, norms2, o) => fromOnStack(meta, stack, norms2, o),
  },
  reference: "from-dense",
};
