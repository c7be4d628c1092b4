/**
 * What a federation with central DP has spent: every round whose noisy
 * result was released (merged: it has a result hash) is one step of the
 * subsampled Gaussian mechanism at the sampling rate it opened with
 * (cohort / enrolled) and the federation's noise multiplier; their RDP adds
 * up, and ε is read off at the federation's δ (`privacy/rdp.ts`). A round
 * that failed or was aborted released nothing and spends nothing.
 */

import { composedRdp, privacySpent } from "@tributary/protocol";
import type { Federation, PrivacySpec, RoundRecord } from "../core/model.ts";
import { cohortSizeFor } from "./cohort.ts";

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

/** What a federation has spent, and whether another round fits its budget. */
export interface PrivacyCheck {
  /** A round opened now stays within the budget (always, without one). */
  readonly ok: boolean;
  /** ε spent by the merged rounds, and by how many. */
  readonly spent: number;
  readonly rounds: number;
  /** ε if one more round opened now with the cohort the connected clients give. */
  readonly projected: number;
}

/**
 * The check of `federation`'s rounds in `book`; `undefined` without central DP.
 *
 * @example
 * if (privacyCheck(fed, book)?.ok === false) return; // no round opens
 */
export function privacyCheck(
  federation: Federation,
  book: {
    all(): RoundRecord[];
    readonly online: ReadonlySet<string>;
    readonly enrolled: ReadonlySet<string>;
  },
): PrivacyCheck | undefined {
  const spec = federation.privacy;
  if (spec === undefined) return undefined;
  const rounds = book.all();
  const { epsilon: spent, rounds: charged } = privacyAccount(spec, rounds);
  if (spec.epsilonBudget === undefined) return { ok: true, spent, rounds: charged, projected: spent };
  const q = cohortSizeFor(federation.policy, book.online.size) / Math.max(1, book.enrolled.size);
  const projected = privacyAccount(spec, rounds, [q]).epsilon;
  return { ok: projected <= spec.epsilonBudget, spent, rounds: charged, projected };
}
