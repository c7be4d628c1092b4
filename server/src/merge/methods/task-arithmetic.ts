/**
 * Task arithmetic (Ilharco et al.): `M = λ Σ Θ_i` (λ = `scale`), at the
 * output rank.
 */
import { type FactorStack, stackModule } from "../factor-stack.ts";
import type { MergeOptions } from "../options.ts";
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
