/**
 * FLoRA (Wang et al., "FLoRA: Federated Fine-Tuning Large Language Models
 * with Heterogeneous Low-Rank Adaptations", NeurIPS 2024): the clients'
 * factors stacked, sample-weighted — `B = [c_1 s_1 B_1 … c_n s_n B_n]`,
 * `A = [A_1; …; A_n]` — so `B A = Σ c_i Θ_i` exactly, at rank `Σ r_i`
 * whatever the clients' ranks (heterogeneous ranks need no padding). The
 * paper's clients then fold the merged update into their base weights and
 * start the next round from fresh LoRA factors.
 */
import { stackModule } from "../factor-stack.ts";
import type { MergeMethod } from "../method.ts";
import type { MergeOptions } from "../params.ts";
import type { ModuleGroup, ModuleMergeResult } from "../types.ts";
import { linearMerge, sampleWeights } from "./common.ts";

/** Merges one module with FLoRA: sample-weighted stacking at rank `Σ r_i`. */
export function mergeFlora(group: ModuleGroup, opts: MergeOptions): ModuleMergeResult {
  const stack = stackModule(group);
  const weights = sampleWeights(group.clients.length, opts.samples, group.name);
  return linearMerge(group, stack, weights, { ...opts, rank: "full" }, weights);
}

/** FLoRA, as the registry lists it. */
export const floraMethod: MergeMethod = {
  name: "flora",
  title: "FLoRA",
  summary: "sample-weighted stacking of the clients' factors at rank Σ r_i (exact, heterogeneous ranks)",
  params: [],
  check: (o) =>
    typeof o.rank === "number"
      ? "flora stacks the clients' factors at rank Σ r_i; leave --rank out"
      : undefined,
  denseWeights: "samples",
  usesSamples: true,
  merge: mergeFlora,
  reference: "fedavg-dense",
};
