/**
 * The coordinator's read side and its small client calls: federations,
 * rounds, updates, results, clients and tokens, as the schedulers and the
 * journal's state hold them; upload status and published adapters for
 * clients. Nothing here journals anything.
 */
import type { Federation } from "../core/model.ts";
import type { CoordinatorStore } from "../core/store.ts";
import { UpdateConflictError } from "../core/store-errors.ts";
import { whyNoRound } from "./cohort.ts";
import type { Coordinator, TokenHolder } from "./coordinator-types.ts";
import { UnknownRoundError } from "./errors.ts";
import type { PublishedResults } from "./published-results.ts";
import type { RoundScheduler } from "./round-scheduler-types.ts";

/** The coordinator operations `createQueries` answers. */
export type CoordinatorQueries = Pick<
  Coordinator,
  | "federations"
  | "federation"
  | "rounds"
  | "updates"
  | "result"
  | "clients"
  | "connected"
  | "stragglers"
  | "whyNoRound"
  | "privacy"
  | "current"
  | "uploadStatus"
  | "publishedAdapter"
  | "tokenDigests"
>;

/** What the queries read. */
export interface QuerySources {
  readonly store: CoordinatorStore;
  readonly results: PublishedResults;
  readonly federations: () => Federation[];
  /** The federation, or `UnknownFederationError`. */
  readonly federation: (id: string) => Federation;
  /** The federation's scheduler, or `UnknownFederationError`. */
  readonly schedulerOf: (id: string) => RoundScheduler;
}

/** The read side over `src` (see the module comment). */
export function createQueries(src: QuerySources): CoordinatorQueries {
  const { store, results, schedulerOf } = src;
  return {
    federations: src.federations,
    federation: src.federation,
    rounds(id) {
      const s = schedulerOf(id);
      const out = [];
      for (let n = 1; n <= (s.current()?.number ?? 0); n++) {
        const round = s.round(n);
        if (round !== undefined) out.push({ round, accepted: s.accepted(n).length });
      }
      return out;
    },
    updates(id, n) {
      const s = schedulerOf(id);
      if (s.round(n) === undefined) throw new UnknownRoundError(id, n);
      return [...s.accepted(n)];
    },
    result: (id, n) => {
      schedulerOf(id);
      return results.result(id, n);
    },
    clients: (id) => [...(store.state().federations.get(id)?.clients.values() ?? [])],
    connected: (id) => schedulerOf(id).connected(),
    stragglers: (id, n) => schedulerOf(id).stragglers(n),
    privacy: (id) => {
      const spec = src.federation(id).privacy;
      const p = schedulerOf(id).privacy();
      if (spec === undefined || p === undefined) return undefined;
      return {
        epsilon: p.spent,
        delta: spec.delta,
        epsilonBudget: spec.epsilonBudget ?? 0,
        rounds: p.rounds,
        budgetSpent: !p.ok,
      };
    },
    whyNoRound: (id) => {
      const s = schedulerOf(id);
      const why = whyNoRound(src.federation(id).policy, s.current(), s.connected().length);
      const privacy = s.privacy();
      if (why === undefined || privacy === undefined || privacy.ok) return why;
      const budget = src.federation(id).privacy?.epsilonBudget ?? 0;
      return `privacy budget spent: ε = ${privacy.spent.toFixed(4)} of ${budget}; another round would take it to ${Number.isFinite(privacy.projected) ? privacy.projected.toFixed(4) : "∞"}`;
    },
    current: (id) => schedulerOf(id).current(),
    uploadStatus: (key) =>
      store.uploadStatus(key).catch((err: unknown) => {
        // Another update holds this client's place: nothing of *this* one is stored
        // (submitting it is then refused with ALREADY_EXISTS, saying which one).
        if (err instanceof UpdateConflictError) return { state: "none" as const, bytes: 0 };
        throw err;
      }),
    publishedAdapter: (id, sel) => {
      schedulerOf(id);
      return results.adapter(id, sel);
    },
    tokenDigests() {
      const out = new Map<string, TokenHolder>();
      for (const entry of store.state().federations.values()) {
        for (const c of entry.clients.values()) {
          const hit = out.get(c.tokenSha256) ?? { clientId: c.clientId, federations: new Set<string>() };
          hit.federations.add(c.federationId);
          out.set(c.tokenSha256, hit);
        }
      }
      return out;
    },
  };
}
