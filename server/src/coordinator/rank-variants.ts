/**
 * FlexLoRA's distribution for federations whose clients train at different
 * ranks: besides its merged adapter, a round keeps that adapter truncated
 * exactly (by SVD, from the factors) to each smaller rank its merged
 * clients submitted at, so every client receives an update of its own rank
 * (`RoundResult.rankVariants`, `FetchAdapterRequest.rank`). A client's rank
 * is its update's largest module rank, as intake measured it.
 */
import type { UpdateRecord } from "../core/model.ts";
import { stackTerms } from "../merge/factor-stack.ts";
import { truncateStack } from "../merge/solvers/truncated-svd.ts";
import type { MergeOutcome } from "../pipeline/merge-adapters.ts";

/** The merged adapter's rank: its largest module rank. */
export function outcomeRank(outcome: MergeOutcome): number {
  let r = 0;
  for (const entry of outcome.modules.values()) r = Math.max(r, entry.result.merged.rank);
  return r;
}

/** The ranks the round's merged clients trained at below the merged adapter's, ascending, each once. */
export function variantRanks(updates: readonly UpdateRecord[], outcome: MergeOutcome): number[] {
  const merged = outcomeRank(outcome);
  const ranks = new Set<number>();
  for (const u of updates) {
    const modules = Object.values(u.modules ?? {});
    if (modules.length === 0) continue;
    const r = Math.max(...modules.map((m) => m.rank));
    if (r < merged) ranks.add(r);
  }
  return [...ranks].sort((x, y) => x - y);
}

/**
 * `outcome` with every module's merged update replaced by its best
 * approximation of rank at most `rank` (`B A = U_r Σ_r V_rᵀ` of the merged
 * `B A`); modules already within it are kept as they are.
 */
export function truncatedOutcome(outcome: MergeOutcome, rank: number): MergeOutcome {
  const modules = new Map(
    [...outcome.modules].map(([name, entry]) => {
      const m = entry.result.merged;
      if (m.rank <= rank) return [name, entry];
      const dIn = m.a.length / m.rank;
      const dOut = m.b.length / m.rank;
      const stack = stackTerms(name, dOut, dIn, 1, [{ client: 0, rank: m.rank, b: m.b, a: m.a }]);
      const t = truncateStack(stack, [1], rank);
      return [name, { ...entry, result: { ...entry.result, merged: t.merged } }];
    }),
  );
  return { ...outcome, modules };
}
