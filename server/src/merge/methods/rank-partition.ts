/**
 * Rank-partition aggregation (raFLoRA: Wu et al., "Preventing Rank Collapse
 * in Federated Low-Rank Adaptation with Client Heterogeneity", 2026) for
 * clients training at different ranks. The rank indices are cut at the
 * clients' distinct ranks (`r ∈ {4, 8, 16}` gives the partitions 1–4, 5–8
 * and 9–16). Each partition `p` of the merged update is the weighted mean
 * of the contributions `s_i B_i[:, p] A_i[p, :]` of the clients that reach
 * it, weighted by their sample weights renormalised over those clients:
 * `Σ_p Σ_{i: r_i ≥ end_p} (w_i / W_p) s_i B_i[:, p] A_i[p, :]`. A rank-
 * agnostic average (FedAvg, FlexLoRA) instead scales the higher partitions
 * by `W_p < 1`, round after round, which collapses the global adapter's
 * energy into the smallest shared rank. Equal ranks give FedAvg exactly.
 *
 * Factored: one stacked term per client and partition, then the exact
 * rank-`r` step as FedAvg's (default rank: the largest client rank).
 */
import { type FactorTerm, stackTerms } from "../factor-stack.ts";
import type { MergeMethod } from "../method.ts";
import type { MergeOptions } from "../params.ts";
import type { ModuleGroup, ModuleMergeResult } from "../types.ts";
import { linearMerge, sampleWeights } from "./common.ts";

/** The partition boundaries of a module: its clients' distinct ranks, ascending. */
export function rankPartitions(ranks: readonly number[]): number[] {
  return [...new Set(ranks)].sort((x, y) => x - y);
}

/**
 * Each client's terms, one per partition it reaches: columns `[start, end)`
 * of `B` (times `s_i · w_i / W_p`) and the same rows of `A`.
 */
export function partitionTerms(group: ModuleGroup, weights: readonly number[]): FactorTerm[] {
  const { dOut, dIn, clients } = group;
  const ends = rankPartitions(clients.map((c) => c.rank));
  const terms: FactorTerm[] = [];
  let start = 0;
  for (const end of ends) {
    const members = clients.map((c, i) => (c.rank >= end ? i : -1)).filter((i) => i >= 0);
    const total = members.reduce((s, i) => s + weights[i], 0);
    const width = end - start;
    for (const i of members) {
      const c = clients[i];
      if (total === 0 || weights[i] === 0) continue;
      const b = new Float32Array(dOut * width);
      for (let row = 0; row < dOut; row++) {
        for (let j = 0; j < width; j++) b[row * width + j] = c.b[row * c.rank + start + j];
      }
      terms.push({
        client: i,
        rank: width,
        b,
        a: c.a.subarray(start * dIn, end * dIn),
        scale: (c.scaling * weights[i]) / total,
      });
    }
    start = end;
  }
  return terms;
}

/** Merges one module by rank partitions (sample weights; equal when absent). */
export function mergeRankPartition(group: ModuleGroup, opts: MergeOptions): ModuleMergeResult {
  const weights = sampleWeights(group.clients.length, opts.samples, group.name);
  const stack = stackTerms(
    group.name,
    group.dOut,
    group.dIn,
    group.clients.length,
    partitionTerms(group, weights),
  );
  return linearMerge(
    group,
    stack,
    group.clients.map(() => 1),
    opts,
    weights,
  );
}

/** Rank-partition aggregation, as the registry lists it. */
export const rankPartitionMethod: MergeMethod = {
  name: "rank-partition",
  title: "Rank-partition aggregation (raFLoRA)",
  summary:
    "each rank partition the weighted mean of the clients that reach it (heterogeneous ranks without rank collapse; FedAvg at equal ranks)",
  params: [],
  denseWeights: "samples",
  usesSamples: true,
  merge: mergeRankPartition,
  reference: "rank-partition-dense",
};
