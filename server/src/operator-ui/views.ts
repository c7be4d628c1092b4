/**
 * The operator page's read-only JSON views, built from the `Coordinator`
 * interface alone: federations with their clients, and rounds with their
 * timing, stragglers and per-client submissions (time, size, samples, merge
 * weight). Plain records, so the page and the tests see the same numbers.
 */
import type { Coordinator } from "../coordinator/coordinator.ts";
import type { RoundResult, RoundState } from "../core/model.ts";

/** The read side of the coordinator the page uses. */
export type CoordinatorReader = Pick<
  Coordinator,
  | "federations"
  | "federation"
  | "rounds"
  | "updates"
  | "result"
  | "clients"
  | "connected"
  | "stragglers"
  | "current"
  | "cluster"
>;

/** A federation as `/api/federations` lists it. */
export interface FederationView {
  readonly id: string;
  readonly name: string;
  readonly method: string;
  readonly rank: number | "full" | null;
  readonly baseModel: string;
  readonly modules: number;
  readonly createdAt: number;
  readonly policy: {
    readonly minClients: number;
    readonly quorum: number;
    readonly cohortSize: number | null;
    readonly cohortFraction: number | null;
    readonly waitAfterQuorumMs: number;
    readonly deadlineMs: number;
    readonly onDeadline: string;
    readonly maxUpdateBytes: number;
  };
  readonly clients: readonly {
    readonly id: string;
    readonly enrolledAt: number;
    readonly connected: boolean;
  }[];
  readonly currentRound: { readonly number: number; readonly state: RoundState } | null;
  /**
   * The coordinator leading the federation's rounds when several share one
   * store (`here`: the one serving this page); `null` for a coordinator alone.
   */
  readonly leader: {
    readonly coordinatorId: string;
    readonly term: number;
    readonly address: string | null;
    readonly here: boolean;
  } | null;
  readonly rounds: number;
  readonly publishedRounds: number;
}

/** One accepted update of a round. */
export interface SubmissionView {
  readonly clientId: string;
  readonly updateId: string;
  /** Epoch ms the update was durably stored. */
  readonly receivedAt: number;
  /** `receivedAt` relative to the round's opening. */
  readonly offsetMs: number;
  readonly size: number;
  readonly samples: number;
  /** Mean merge weight over modules; `null` until the round is merged. */
  readonly weight: number | null;
  /** Arrived after quorum was reached (during the straggler wait). */
  readonly afterQuorum: boolean;
  readonly sha256: string;
  /** Why the merge left this update out; `null` when it did not. */
  readonly excluded: string | null;
}

/** One round as `/api/federations/:id/rounds` lists it. */
export interface RoundView {
  readonly number: number;
  readonly state: RoundState;
  readonly openedAt: number;
  readonly deadlineAt: number;
  readonly quorumAt: number | null;
  readonly closedAt: number | null;
  readonly mergedAt: number | null;
  /** Open to close (to now while open). */
  readonly durationMs: number;
  /** Close to merged result; `null` when not merged. */
  readonly mergeMs: number | null;
  readonly extended: boolean;
  readonly cohort: readonly string[];
  readonly quorum: number;
  readonly accepted: number;
  /** Cohort members with no accepted update (still missing while open). */
  readonly stragglers: readonly string[];
  readonly resultHash: string | null;
  readonly resultSize: number | null;
  readonly published: boolean;
  readonly failure: string | null;
  /** Bytes received in accepted updates. */
  readonly bytes: number;
  readonly samples: number;
  readonly submissions: readonly SubmissionView[];
}

/** `/api/federations/:id/rounds`. */
export interface RoundsView {
  readonly federationId: string;
  readonly now: number;
  /** Rounds the federation has had (the list holds the latest `limit`). */
  readonly total: number;
  readonly rounds: readonly RoundView[];
}

/** Every federation with its clients and current round. */
export function federationsView(c: CoordinatorReader): FederationView[] {
  const cluster = c.cluster();
  return c.federations().map((f) => {
    const leader = cluster.leaders.find((l) => l.federationId === f.id);
    const connected = new Set(c.connected(f.id));
    const rounds = c.rounds(f.id);
    const current = c.current(f.id);
    const p = f.policy;
    return {
      id: f.id,
      name: f.name,
      method: f.merge.method,
      rank: f.merge.rank ?? null,
      baseModel: f.schema.baseModel,
      modules: f.schema.modules.length,
      createdAt: f.createdAt,
      policy: {
        minClients: p.minClients,
        quorum: p.quorum,
        cohortSize: p.cohortSize ?? null,
        cohortFraction: p.cohortFraction ?? null,
        waitAfterQuorumMs: p.waitAfterQuorumMs,
        deadlineMs: p.deadlineMs,
        onDeadline: p.onDeadline,
        maxUpdateBytes: p.maxUpdateBytes,
      },
      clients: c
        .clients(f.id)
        .map((r) => ({ id: r.clientId, enrolledAt: r.enrolledAt, connected: connected.has(r.clientId) })),
      currentRound: current === undefined ? null : { number: current.number, state: current.state },
      leader:
        cluster.coordinatorId === undefined || leader === undefined
          ? null
          : {
              coordinatorId: leader.coordinatorId,
              term: leader.term,
              address: leader.address ?? null,
              here: leader.coordinatorId === cluster.coordinatorId,
            },
      rounds: rounds.length,
      publishedRounds: rounds.filter((r) => r.round.state === "published").length,
    };
  });
}

/**
 * The latest `limit` rounds of a federation, oldest first.
 * `UnknownFederationError` for an unknown id.
 */
export async function roundsView(
  c: CoordinatorReader,
  federationId: string,
  now: number,
  limit = 100,
): Promise<RoundsView> {
  const quorum = c.federation(federationId).policy.quorum;
  const all = c.rounds(federationId);
  const rounds: RoundView[] = [];
  for (const { round: r, accepted } of all.slice(-limit)) {
    const updates = c.updates(federationId, r.number);
    // A result that cannot be read back (store damaged) only hides the weights.
    const result: RoundResult | undefined = await c.result(federationId, r.number).catch(() => undefined);
    const weightOf = (clientId: string): number | null => {
      const i = result?.clients.indexOf(clientId) ?? -1;
      return i >= 0 && result !== undefined ? (result.weights[i] ?? null) : null;
    };
    rounds.push({
      number: r.number,
      state: r.state,
      openedAt: r.openedAt,
      deadlineAt: r.deadlineAt,
      quorumAt: r.quorumAt ?? null,
      closedAt: r.closedAt ?? null,
      mergedAt: result?.mergedAt ?? null,
      durationMs: Math.max(0, (r.closedAt ?? now) - r.openedAt),
      mergeMs:
        result !== undefined && r.closedAt !== undefined ? Math.max(0, result.mergedAt - r.closedAt) : null,
      extended: r.extended,
      cohort: [...r.cohort],
      quorum,
      accepted,
      stragglers: c.stragglers(federationId, r.number),
      resultHash: r.resultHash ?? null,
      resultSize: result?.size ?? null,
      published: r.published === true,
      failure: r.failure ?? null,
      bytes: updates.reduce((s, u) => s + u.size, 0),
      samples: updates.reduce((s, u) => s + u.samples, 0),
      submissions: [...updates]
        .sort((a, b) => a.receivedAt - b.receivedAt)
        .map((u) => ({
          clientId: u.clientId,
          updateId: u.updateId,
          receivedAt: u.receivedAt,
          offsetMs: u.receivedAt - r.openedAt,
          size: u.size,
          samples: u.samples,
          weight: weightOf(u.clientId),
          afterQuorum: r.quorumAt !== undefined && u.receivedAt > r.quorumAt,
          sha256: u.sha256,
          excluded: result?.excluded?.find((e) => e.clientId === u.clientId)?.reason ?? null,
        })),
    });
  }
  return { federationId, now, total: all.length, rounds };
}
