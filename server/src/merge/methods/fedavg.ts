/**
 * FedAvg on products (exact): `M = Σ c_i Θ_i` with `c_i = n_i / Σ n_j`
 * (sample counts; equal when absent), at the output rank. The reported
 * objective is the sample-weighted `Σ c_i ‖BA − Θ_i‖²`.
 */
import { type FactorStack, stackModule } from "../factor-stack.ts";
import type { StackGrams } from "../grams.ts";
import type { MergeMethod } from "../method.ts";
import type { MergeOptions } from "../params.ts";
import type { ModuleGroup, ModuleMergeResult, ModuleMeta } from "../types.ts";
import { gramsAndNorms, sampleWeights, weightedMerge } from "./common.ts";

/** Merges one module with exact FedAvg. */
export function mergeFedavg(group: ModuleGroup, opts: MergeOptions): ModuleMergeResult {
  const stack = stackModule(group);
  const { grams, norms2 } = gramsAndNorms(group, stack, opts);
  return fedavgOnStack(group, stack, norms2, opts, grams);
}

/** Exact FedAvg on `stack` (the module's clients, held or streamed), whose clients' squared norms are `norms2`. */
export function fedavgOnStack(
  meta: ModuleMeta,
  stack: FactorStack,
  norms2: readonly number[],
  opts: MergeOptions,
  grams?: StackGrams,
): ModuleMergeResult {
  return weightedMerge(
    meta,
    stack,
    sampleWeights(meta.clients.length, opts.samples, meta.name),
    norms2,
    opts,
    grams,
  );
}

/** FedAvg, as the registry lists it. */
export const fedavgMethod: MergeMethod = {
  name: "fedavg",
  title: "FedAvg",
  summary: "sample-weighted mean of the products Σ n_i Θ_i / Σ n_j (exact), at the output rank",
  params: [],
  denseWeights: "samples",
  usesSamples: true,
  merge: mergeFedavg,
  streamed: { merge: (meta, stack, norms2, o) => fedavgOnStack(meta, stack, norms2, o) },
  reference: "fedavg-dense",
};
