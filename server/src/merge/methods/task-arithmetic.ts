/**
 * Task arithmetic (Ilharco et al.): `M = λ Σ Θ_i` (λ = `scale`), at the
 * output rank.
 */
import { type FactorStack, stackModule } from "../factor-stack.ts";
import type { MergeMethod } from "../method.ts";
import type { MergeOptions } from "../params.ts";
import type { ModuleGroup, ModuleMergeResult, ModuleMeta } from "../types.ts";
import { linearMerge } from "./common.ts";

/** Merges one module with task arithmetic. */
export function mergeTaskArithmetic(group: ModuleGroup, opts: MergeOptions): ModuleMergeResult {
  return taskArithmeticOnStack(group, stackModule(group), opts);
}

/**
 * Task arithmetic on `stack` (the module's clients, held or streamed);
 * `norms2`, the clients' squared norms when known, spare the stream route
 * its bound.
 */
export function taskArithmeticOnStack(
  meta: ModuleMeta,
  stack: FactorStack,
  opts: MergeOptions,
  norms2?: readonly number[],
): ModuleMergeResult {
  const ones = meta.clients.map(() => 1);
  return linearMerge(meta, stack, ones, opts, ones, undefined, undefined, norms2);
}

/** Task arithmetic, as the registry lists it. */
export const taskArithmeticMethod: MergeMethod = {
  name: "task-arithmetic",
  title: "Task arithmetic",
  summary: "λ Σ Θ_i (λ = --scale), at the output rank",
  params: [],
  denseWeights: "uniform",
  usesSamples: false,
  merge: mergeTaskArithmetic,
  streamed: { merge: (meta, stack, norms2, o) => taskArithmeticOnStack(meta, stack, o, norms2) },
  reference: "task-arithmetic-dense",
};
