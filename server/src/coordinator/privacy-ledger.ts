/**
 * What a federation with central DP has spent: every round whose noisy
 * result was released (merged: it has a result hash) is one step of the
 * subsampled Gaussian mechanism at the sampling rate it opened with
 * (cohort / enrolled) and the federation's noise multiplier; their RDP adds
 * up, and ε is read off at the federation's δ (`privacy/rdp.ts`). A round
 * that failed or was aborted released nothing and spends nothing.
 */

import { composedRdp, privacySpent } from "@tributary/protocol";
import type { PrivacySpec, RoundRecord } from "../core/model.ts";

/** ε spent, and by how many rounds. */
export interface PrivacyAccount {
  readonly epsilon: number;
  readonly rounds: number;
}

/**
 * The account of `rounds`' released rounds, plus rounds at the sampling
 * rates `more` (e.g. the next round, to check the budget before it opens).
 *
 * @example
 * privacyAccount(spec, scheduler.rounds(), [cohort / enrolled]).epsilon > spec.epsilonBudget;
 */
export function privacyAccount(
  spec: PrivacySpec,
  rounds: readonly RoundRecord[],
  more: readonly number[] = [],
): PrivacyAccount {
  const rates = [
    ...rounds
      .filter((r) => r.resultHash !== undefined && r.samplingRate !== undefined)
      .map((r) => r.samplingRate!),
    ...more,
  ];
  if (rates.length === 0) return { epsilon: 0, rounds: 0 };
  const counts = new Map<number, number>();
  for (const q of rates) counts.set(q, (counts.get(q) ?? 0) + 1);
  const rdp = composedRdp(
    [...counts].map(([q, steps]) => ({ q: Math.min(1, q), noiseMultiplier: spec.noiseMultiplier, steps })),
  );
  return { epsilon: privacySpent(rdp, spec.delta).epsilon, rounds: rates.length };
}

/**
 * The account if one more round opened now with `cohort` of `enrolled`
 * clients, and whether that stays within the budget (always, without one).
 */
export function nextRoundWithinBudget(
  spec: PrivacySpec,
  rounds: readonly RoundRecord[],
  cohort: number,
  enrolled: number,
): { readonly ok: boolean; readonly spent: number; readonly projected: number } {
  const spent = privacyAccount(spec, rounds).epsilon;
  if (spec.epsilonBudget === undefined) return { ok: true, spent, projected: spent };
  const projected = privacyAccount(spec, rounds, [cohort / Math.max(1, enrolled)]).epsilon;
  return { ok: projected <= spec.epsilonBudget, spent, projected };
}
