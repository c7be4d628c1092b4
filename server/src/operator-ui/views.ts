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
  | "refusals"
  | "lastSeen"
  | "whyNoRound"
  | "privacy"
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
    /** When it last joined or sent a heartbeat (to this coordinator, or to another one sharing the store). */
    readonly lastSeenAt: number | null;
    /** The latest round it submitted an accepted update to. */
    readonly lastRound: number | null;
  }[];
  /** Why no round is open (`null` while one is open or merging). */
  readonly waitingReason: string | null;
  /** With central DP: ε spent at δ, the budget (0 = none), rounds charged, whether another fits. */
  readonly privacy: {
    readonly epsilon: number;
    readonly delta: number;
    readonly epsilonBudget: number;
    readonly rounds: number;
    readonly budgetSpent: boolean;
  } | null;
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
  /** What the client reported with the update (loss, …). */
  readonly metrics: Readonly<Record<string, number>>;
}

/** An update intake refused in a round. */
export interface RefusalView {
  readonly clientId: string;
  readonly updateId: string;
  readonly at: number;
  /** `at` relative to the round's opening. */
  readonly offsetMs: number;
  /** The error's reason, e.g. `INVALID_TENSOR`. */
  readonly reason: string;
  readonly message: string;
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
  /** With central DP, once merged: ε of this round alone and the federation's after it. */
  readonly epsilon: number | null;
  readonly roundEpsilon: number | null;
  /** Bytes received in accepted updates. */
  readonly bytes: number;
  readonly samples: number;
  readonly submissions: readonly SubmissionView[];
  /** Updates refused for this round (latest kept by this coordinator). */
  readonly refusals: readonly RefusalView[];
  /**
   * Each reported metric's mean over the round's submissions, weighted by
   * sample counts (a plain mean when no update gave one).
   */
  readonly metricsMean: Readonly<Record<string, number>>;
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
    const lastRound = new Map<string, number>();
    for (const { round } of rounds)
      for (const u of c.updates(f.id, round.number)) lastRound.set(u.clientId, round.number);
    const remoteSeen = new Map<string, number>();
    for (const e of cluster.remoteClients)
      if (e.federationId === f.id)
        remoteSeen.set(e.clientId, Math.max(remoteSeen.get(e.clientId) ?? 0, e.lastSeenAt));
    const lastSeenOf = (id: string): number | null => {
      const t = Math.max(c.lastSeen(f.id, id) ?? 0, remoteSeen.get(id) ?? 0);
      return t > 0 ? t : null;
    };
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
      clients: c.clients(f.id).map((r) => ({
        id: r.clientId,
        enrolledAt: r.enrolledAt,
        connected: connected.has(r.clientId),
        lastSeenAt: lastSeenOf(r.clientId),
        lastRound: lastRound.get(r.clientId) ?? null,
      })),
      waitingReason: c.whyNoRound(f.id) ?? null,
      privacy: c.privacy(f.id) ?? null,
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

/** Each metric's mean over `updates` that report it, weighted by samples (plain when none has any). */
export function weightedMetrics(
  updates: readonly { readonly samples: number; readonly metrics: Readonly<Record<string, number>> }[],
): Record<string, number> {
  const out: Record<string, number> = {};
  const names = [...new Set(updates.flatMap((u) => Object.keys(u.metrics)))].sort();
  for (const name of names) {
    const has = updates.filter((u) => Number.isFinite(u.metrics[name]));
    const total = has.reduce((s, u) => s + u.samples, 0);
    const w = (u: (typeof has)[number]) => (total > 0 ? u.samples / total : 1 / has.length);
    if (has.length > 0) out[name] = has.reduce((s, u) => s + w(u) * u.metrics[name], 0);
  }
  return out;
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
  const refused = c.refusals(federationId);
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
      epsilon: r.epsilon ?? null,
      roundEpsilon: r.roundEpsilon ?? null,
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
          metrics: { ...u.metrics },
        })),
      refusals: refused
        .filter((x) => x.round === r.number)
        .map((x) => ({
          clientId: x.clientId,
          updateId: x.updateId,
          at: x.at,
          offsetMs: x.at - r.openedAt,
          reason: x.reason,
          message: x.message,
        })),
      metricsMean: weightedMetrics(updates),
    });
  }
  return { federationId, now, total: all.length, rounds };
}
