/**
 * FedAvg on products (exact): `M = Σ c_i Θ_i` with `c_i = n_i / Σ n_j`
 * (sample counts; equal when absent), at the output rank. The reported
 * objective is the sample-weighted `Σ c_i ‖BA − Θ_i‖²`.
 */
import { stackModule } from "../factor-stack.ts";
import type { MergeOptions } from "../options.ts";
import type { ModuleGroup, ModuleMergeResult } from "../types.ts";
import { gramsAndNorms, linearMerge, sampleWeights } from "./common.ts";

/** Merges one module with exact FedAvg. */
export function mergeFedavg(group: ModuleGroup, opts: MergeOptions): ModuleMergeResult {
  const c = sampleWeights(group.clients.length, opts.samples, group.name);
  const stack = stackModule(group);
  const { grams, norms2 } = gramsAndNorms(group, stack, opts);
  const weightedNorm2 = norms2.reduce((s, n2, i) => s + c[i] * n2, 0);
  return linearMerge(group, stack, c, opts, c, weightedNorm2, grams, norms2);
}
