/**
 * The federations a coordinator serves, each with its round scheduler, built
 * from the journal's state (at start) or from a `federation-created` event,
 * and resumed where the journal left it. A coordinator alone on its store
 * leads every federation. Several on one replicated store campaign for each
 * federation's lease (`core/leadership.ts`): the winner journals
 * `leader-elected` and runs the scheduler (`round-scheduler.ts`), stamping
 * its round events with its term; the others follow (`follower-scheduler.ts`).
 */
import type { Clock } from "../core/clock.ts";
import type { Leadership, LeaseHolder } from "../core/leadership.ts";
import type { Log } from "../core/log.ts";
import type { Federation, RoundRecord } from "../core/model.ts";
import type { FederationLeader, NewRoundFlowEvent, StoreState } from "../core/store.ts";
import type { Telemetry } from "../core/telemetry.ts";
import { UnknownFederationError } from "./errors.ts";
import { createFollowerScheduler } from "./follower-scheduler.ts";
import type { RoundFlow } from "./round-flow.ts";
import { createRoundScheduler, type RoundScheduler } from "./round-scheduler.ts";
import type { SchedulerSnapshot } from "./round-scheduler-types.ts";
import { createSerialQueue } from "./serial-queue.ts";

/** Federations by id, with their schedulers. */
export interface FederationRegistry {
  /** Builds `federation`'s scheduler from the journaled state and resumes it (or campaigns for it). */
  add(federation: Federation): Promise<void>;
  /** Another coordinator journaled its election: one that led in an older term follows now. */
  onLeaderElected(leader: FederationLeader): void;
  has(id: string): boolean;
  /** The federation, or `UnknownFederationError`. */
  federation(id: string): Federation;
  /**
   * Its scheduler, or `UnknownFederationError`: a handle that always reaches
   * the federation's current scheduler (the leader's or a follower's), even
   * across a change of leader.
   */
  scheduler(id: string): RoundScheduler;
  /** Whether this coordinator leads federation `id` now. */
  leads(id: string): boolean;
  /** The federation's leader as last seen (this coordinator, or another). */
  leader(id: string): LeaseHolder | undefined;
  federations(): Federation[];
  schedulers(): [string, RoundScheduler][];
  /** Stops every scheduler and every campaign. */
  close(): Promise<void>;
}

/** What the registry builds schedulers with. */
export interface RegistryDeps {
  readonly flow: RoundFlow;
  readonly clock: Clock;
  readonly log: Log;
  readonly telemetry: Telemetry;
  readonly leadership: Leadership;
  /** The store's state now (a new leader starts from it). */
  readonly state: () => StoreState;
  /** A round the journal left MERGING, on the coordinator that now leads it: merge it again. */
  readonly resumeMerge: (round: RoundRecord) => void;
  /**
   * This coordinator now leads `federationId` (its scheduler runs): what the
   * previous leader merged and did not announce is now this one's to announce.
   */
  readonly onLead?: (federationId: string) => void;
}

interface Slot {
  readonly federation: Federation;
  scheduler: RoundScheduler;
  term: number | undefined;
  /** What `scheduler(id)` hands out: calls go to `scheduler` as it is when they are made. */
  readonly handle: RoundScheduler;
}

/** A scheduler whose every call goes to `current()`. */
function forwarding(current: () => RoundScheduler): RoundScheduler {
  return new Proxy({} as RoundScheduler, {
    get: (_, name: keyof RoundScheduler) => {
      const target = current();
      const member = target[name];
      return typeof member === "function" ? (member as (...a: unknown[]) => unknown).bind(target) : member;
    },
  });
}

/** An empty registry. */
export function createFederationRegistry(deps: RegistryDeps): FederationRegistry {
  const { leadership, log } = deps;
  const slots = new Map<string, Slot>();
  /** Promotions and demotions of one coordinator happen one at a time. */
  const roles = createSerialQueue();
  let closed = false;
  const slot = (id: string): Slot => {
    const found = slots.get(id);
    if (found === undefined) throw new UnknownFederationError(id);
    return found;
  };
  const snapshot = (id: string, online: readonly string[]): SchedulerSnapshot => {
    const entry = deps.state().federations.get(id);
    const rounds = [...(entry?.rounds.values() ?? [])];
    return {
      rounds: rounds.map((r) => r.record),
      updates: rounds.flatMap((r) => [...r.updates.values()]),
      enrolled: entry?.clients.keys() ?? [],
      connected: online,
    };
  };
  const reportError = (federation: Federation) => (err: unknown) =>
    log.error("round scheduling error", { federation: federation.id, error: err });

  const follower = (s: Slot, online: readonly string[]): RoundScheduler => {
    const federation = s.federation;
    const self: RoundScheduler = createFollowerScheduler({
      federation,
      initial: snapshot(federation.id, online),
      effects: {
        journal: async (event) => {
          const sealed = await deps.flow.journal(event);
          // Promoted while this update was on its way: the new leader counts it too.
          if (s.scheduler !== self && sealed.type === "update-accepted")
            await s.scheduler.onForeignEvent(sealed);
        },
        reportError: reportError(federation),
      },
      leader: () => leadership.holders().get(federation.id),
      journaled: () => {
        const entry = deps.state().federations.get(federation.id);
        const latest = Math.max(0, ...(entry?.rounds.keys() ?? []));
        return {
          current: entry?.rounds.get(latest)?.record,
          accepted: (n) => [...(entry?.rounds.get(n)?.updates.values() ?? [])],
        };
      },
    });
    return self;
  };

  /** Makes this coordinator the leader of `s` in `term`: journals it (when replicated), builds the scheduler, resumes. */
  const lead = async (s: Slot, term: number): Promise<void> => {
    const fed = s.federation;
    if (leadership.replicated) {
      const address = leadership.holders().get(fed.id)?.address;
      await deps.flow.journal({
        type: "leader-elected",
        leader: {
          federationId: fed.id,
          coordinatorId: leadership.coordinatorId,
          term,
          ...(address !== undefined ? { address } : {}),
        },
      });
    }
    // Connections the follower recorded so far carry over to the leader.
    await s.scheduler.idle();
    const online = s.scheduler.connected();
    s.scheduler.stop();
    const stamp = (event: NewRoundFlowEvent): NewRoundFlowEvent =>
      leadership.replicated && event.type !== "update-accepted" ? { ...event, term } : event;
    const scheduler = createRoundScheduler({
      federation: fed,
      clock: deps.clock,
      initial: snapshot(fed.id, online),
      effects: {
        journal: async (event) => void (await deps.flow.journal(stamp(event))),
        reportError: reportError(fed),
      },
    });
    s.scheduler = scheduler;
    s.term = term;
    const running = scheduler.current();
    if (running?.state === "open" || running?.state === "merging") {
      deps.telemetry.roundResumed(running, fed.merge.method);
    }
    await scheduler.recover();
    if (running?.state === "merging") deps.resumeMerge(running);
    deps.onLead?.(fed.id);
    if (leadership.replicated) log.info("leading federation", { federation: fed.id, term });
  };

  const follow = (s: Slot): void => {
    if (s.term === undefined) return;
    s.scheduler.stop();
    s.scheduler = follower(s, s.scheduler.connected());
    s.term = undefined;
    log.warn("no longer leading federation", { federation: s.federation.id });
  };

  return {
    async add(federation) {
      if (slots.has(federation.id)) return;
      const s = { federation, term: undefined } as { -readonly [K in keyof Slot]: Slot[K] };
      s.handle = forwarding(() => s.scheduler);
      s.scheduler = follower(s, []);
      slots.set(federation.id, s);
      if (!leadership.replicated) {
        await lead(s, 0);
        return;
      }
      leadership.campaign(federation.id, {
        elected: (term) =>
          void roles
            .run(async () => {
              if (!closed) await lead(s, term);
            })
            .catch((err: unknown) => {
              log.error("could not take the lead of a federation", { federation: federation.id, error: err });
              follow(s);
            }),
        deposed: () => void roles.run(async () => follow(s)),
      });
    },
    onLeaderElected(leader) {
      const s = slots.get(leader.federationId);
      if (s?.term !== undefined && leader.coordinatorId !== leadership.coordinatorId && leader.term > s.term)
        void roles.run(async () => follow(s));
    },
    has: (id) => slots.has(id),
    federation: (id) => slot(id).federation,
    scheduler: (id) => slot(id).handle,
    leads: (id) => slots.get(id)?.term !== undefined,
    leader: (id) => leadership.holders().get(id),
    federations: () => [...slots.values()].map((s) => s.federation),
    schedulers: () => [...slots].map(([id, s]) => [id, s.handle]),
    async close() {
      closed = true;
      for (const s of slots.values()) s.scheduler.stop();
      await roles.idle();
      for (const s of slots.values()) await s.scheduler.idle();
    },
  };
}
