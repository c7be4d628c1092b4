/**
 * Deterministic cohort selection: which connected clients a round invites.
 * The same connected set and round number always give the same cohort, so a
 * restarted coordinator, a test or an operator can recompute it.
 */
import type { RoundPolicy, RoundRecord } from "../core/model.ts";

/** Code-unit order: locale-independent, so every process sorts ids alike. */
function byCodeUnit(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * How many of `connected` clients a round invites, as the protocol's
 * `RoundPolicy` defines it: `cohortSize`, or `ceil(cohortFraction ×
 * connected)`, the larger when both are set, every connected client when
 * neither is; never fewer than `quorum` (a smaller cohort could not reach
 * it), and capped at `connected`.
 *
 * @example
 * cohortSizeFor({ ...policy, cohortFraction: 0.5, quorum: 2 }, 7); // 4
 */
export function cohortSizeFor(policy: RoundPolicy, connected: number): number {
  const bySize = policy.cohortSize;
  const byFraction =
    policy.cohortFraction === undefined ? undefined : Math.ceil(policy.cohortFraction * connected);
  const wanted =
    bySize === undefined && byFraction === undefined ? connected : Math.max(bySize ?? 0, byFraction ?? 0);
  return Math.min(connected, Math.max(wanted, policy.quorum));
}

/**
 * Whether a round can open with `connected` enrolled clients connected: at
 * least `minClients`, and enough for the quorum.
 */
export function canOpenRound(policy: RoundPolicy, connected: number): boolean {
  return connected >= Math.max(policy.minClients, policy.quorum);
}

/**
 * Why no round is open, for people waiting on one (clients, operators):
 * `undefined` while a round is open or merging.
 *
 * @example
 * whyNoRound({ ...policy, minClients: 2, quorum: 2 }, undefined, 1); // "1 of 2 clients connected; …"
 */
export function whyNoRound(
  policy: RoundPolicy,
  last: RoundRecord | undefined,
  connected: number,
): string | undefined {
  if (last !== undefined && (last.state === "open" || last.state === "merging")) return undefined;
  if (last?.state === "aborted") {
    return `round ${last.number} was aborted; the next opens when an operator starts it (tributary admin start-round)`;
  }
  if (last !== undefined && policy.autoAdvance === false) {
    return "rounds open only when an operator starts one (auto_advance is off: tributary admin start-round)";
  }
  const need = Math.max(policy.minClients, policy.quorum);
  if (connected < need) return `${connected} of ${need} clients connected; a round opens when ${need} are`;
  return "a round is about to open";
}

/**
 * The cohort of round `round` (1, 2, …): the connected ids sorted, rotated by
 * `(round − 1) × size` so consecutive rounds invite different clients in
 * turn, and the first `size` taken; returned sorted.
 *
 * @example
 * selectCohort({ ...policy, cohortSize: 2 }, ["c", "a", "b", "d"], 2); // ["c", "d"]
 */
export function selectCohort(policy: RoundPolicy, connected: Iterable<string>, round: number): string[] {
  const ids = [...new Set(connected)].sort(byCodeUnit);
  const n = ids.length;
  const size = cohortSizeFor(policy, n);
  if (size >= n) return ids;
  const offset = ((round - 1) * size) % n;
  const picked: string[] = [];
  for (let i = 0; i < size; i++) picked.push(ids[(offset + i) % n]);
  return picked.sort(byCodeUnit);
}
