/**
 * The one way anything happens to a federation: an event is appended to the
 * journal (durable before it counts), then handed, in journal order, to
 * everything that reacts to it. Read the event types of `core/store.ts` in
 * order to follow one update from `SubmitUpdate` to the broadcast:
 *
 * 1. `round-opened`       — the scheduler opened a round for a cohort;
 * 2. `update-accepted`    — intake stored and checked an update, the scheduler admitted it;
 * 3. `round-quorum`       — enough updates; stragglers still welcome for a while;
 * 4. `round-closed`       — no more updates → the merge service merges (`merge-service.ts`);
 * 5. `round-merged`       — the adapter is stored, the result journaled → the announcer publishes it;
 * 6. `round-published`    — announced on NATS.
 *
 * Watchers, telemetry and the partial-upload clean-up react to the same
 * events (`round-watch.ts`); the client directory to `client-enrolled`. A
 * coordinator that starts replays the journal into state and resumes what the
 * state says is pending: a round closed and not merged, merged and not
 * announced.
 */
import type { Log } from "../core/log.ts";
import type { CoordinatorStore, JournalEvent, NewJournalEvent } from "../core/store.ts";

/**
 * Something that reacts to journaled events; it must not throw (errors are
 * logged). `origin` says whether this coordinator journaled the event or
 * another one did (several coordinators on one replicated store).
 */
export type FlowListener = (event: JournalEvent, origin: "local" | "foreign") => void;

/** The journal and the reactions to it. */
export interface RoundFlow {
  /** Appends `event` (durable when this resolves), then tells every listener. */
  journal(event: NewJournalEvent): Promise<JournalEvent>;
  /** Tells every listener about `event`, which another coordinator journaled. */
  deliver(event: JournalEvent): void;
  /** Adds a listener of every event journaled from now on; returns its removal. */
  subscribe(listener: FlowListener): () => void;
}

/** The flow over `store`'s journal. */
export function createRoundFlow(store: CoordinatorStore, log: Log): RoundFlow {
  const listeners = new Set<FlowListener>();
  const tell = (event: JournalEvent, origin: "local" | "foreign") => {
    for (const listener of listeners) {
      try {
        listener(event, origin);
      } catch (err) {
        log.error("a reaction to a journaled event failed", {
          event: event.type,
          seq: event.seq,
          error: err,
        });
      }
    }
  };
  return {
    async journal(event) {
      const sealed = await store.append(event);
      tell(sealed, "local");
      return sealed;
    },
    deliver: (event) => tell(event, "foreign"),
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
