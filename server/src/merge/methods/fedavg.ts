/**
 * FedAvg on products (exact): `M = Σ c_i Θ_i` with `c_i = n_i / Σ n_j`
 * (sample counts; equal when absent), at the output rank. The reported
 * objective is the sample-weighted `Σ c_i ‖BA − Θ_i‖²`.
 */
import { stackModule } from "../factor-stack.ts";
import { clientNorm2 } from "../grams.ts";
import type { MergeOptions } from "../options.ts";
import type { ModuleGroup, ModuleMergeResult } from "../types.ts";
import { linearMerge, sampleWeights } from "./common.ts";

/** Merges one module with exact FedAvg. */
export function mergeFedavg(group: ModuleGroup, opts: MergeOptions): ModuleMergeResult {
  const c = sampleWeights(group.clients.length, opts.samples, group.name);
  const weightedNorm2 = group.clients.reduce(
    (s, cl, i) => s + c[i] * clientNorm2(cl, group.dOut, group.dIn),
    0,
  );
  return linearMerge(group, stackModule(group), c, opts, c, weightedNorm2);
}
