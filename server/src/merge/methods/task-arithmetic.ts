/**
 * Task arithmetic (Ilharco et al.): `M = λ Σ Θ_i` (λ = `scale`), at the
 * output rank.
 */
import { stackModule } from "../factor-stack.ts";
import type { MergeOptions } from "../options.ts";
import type { ModuleGroup, ModuleMergeResult } from "../types.ts";
import { linearMerge } from "./common.ts";

/** Merges one module with task arithmetic. */
export function mergeTaskArithmetic(group: ModuleGroup, opts: MergeOptions): ModuleMergeResult {
  const ones = group.clients.map(() => 1);
  return linearMerge(group, stackModule(group), ones, opts, ones);
}
