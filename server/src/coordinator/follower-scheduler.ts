/**
 * A federation's scheduler on a coordinator that does not lead it (several
 * coordinators on one replicated store): it keeps the rounds, updates and
 * clients the journal says, accepts updates into the open round (the
 * journal refuses one whose round closed meanwhile), and leaves every
 * decision — opening, closing, merging, announcing — to the leader, whose
 * round events it takes in as they are journaled. Operator commands get
 * `NotLeaderError` naming the leader.
 */

import type { RoundRecord, UpdateRecord } from "../core/model.ts";
import type { RoundFlowEvent } from "../core/store.ts";
import { JournalEventError } from "../core/store-errors.ts";
import { NotEnrolledError, NotLeaderError } from "./errors.ts";
import { privacyCheck } from "./privacy-ledger.ts";
import { createRoundBook } from "./round-book.ts";
import type { RoundScheduler, RoundSchedulerOptions } from "./round-scheduler-types.ts";
import { createSerialQueue } from "./serial-queue.ts";
import { admitToRound } from "./update-validator.ts";

/** What a follower needs beyond a scheduler's options. */
export interface FollowerOptions extends Pick<RoundSchedulerOptions, "federation" | "initial" | "effects"> {
  /** The federation's leader as last seen, for the error operators get. */
  readonly leader: () => { readonly coordinatorId: string; readonly address?: string } | undefined;
  /**
   * The federation's latest round and a round's accepted updates as the
   * store has them now: what decides when the journal refused an update
   * this follower's book let through (another coordinator got there first).
   */
  readonly journaled: () => {
    readonly current: RoundRecord | undefined;
    accepted(n: number): readonly UpdateRecord[];
  };
}

/**
 * A follower scheduler over the journaled snapshot `opts.initial`.
 *
 * @example
 * const follower = createFollowerScheduler({ federation, initial, effects, leader: () => leases.get(federation.id) });
 */
export function createFollowerScheduler(opts: FollowerOptions): RoundScheduler {
  const { federation: fed, effects } = opts;
  const book = createRoundBook(fed.id, opts.initial);
  const queue = createSerialQueue();
  const notLeader = (action: string): Promise<never> =>
    Promise.reject(new NotLeaderError(fed.id, action, opts.leader()));
  const take = (event: RoundFlowEvent): void => {
    if (event.type === "update-accepted") {
      if (!book.accepted(event.update.round).some((u) => u.clientId === event.update.clientId))
        book.addUpdate(event.update);
    } else book.setRound(event.round);
  };
  return {
    recover: async () => undefined,
    current: book.current,
    round: book.round,
    accepted: book.accepted,
    stragglers: book.stragglers,
    connected: book.connected,
    isEnrolled: (clientId) => book.enrolled.has(clientId),
    privacy: () => privacyCheck(fed, book),
    startRound: () => notLeader("start a round"),
    closeRound: () => notLeader("close a round"),
    abortRound: () => notLeader("abort a round"),
    retryMerge: () => notLeader("retry a merge"),
    markPublished: () => notLeader("record an announcement"),
    onMergeFinished: () => notLeader("record a merge"),
    onMergeFailed: () => notLeader("record a failed merge"),
    onUpdateAccepted: (u) =>
      queue.run(async () => {
        const decision = admitToRound(u, book.current(), book.accepted(u.round));
        if (decision.kind === "duplicate") return decision;
        try {
          await effects.journal({ type: "update-accepted", update: u });
        } catch (err) {
          if (!(err instanceof JournalEventError)) throw err;
          // The round closed, or the update was accepted, through another coordinator:
          // decide again on what the journal says (a duplicate, or the error the client needs).
          const now = opts.journaled();
          const again = admitToRound(u, now.current, now.accepted(u.round));
          if (again.kind === "duplicate") return again;
          throw err;
        }
        book.addUpdate(u);
        return decision;
      }),
    onForeignEvent: (event) => queue.run(async () => take(event)),
    onClientEnrolled: (id) =>
      queue.run(async () => {
        book.enrolled.add(id);
      }),
    onClientConnected: (id) =>
      queue.run(async () => {
        if (!book.enrolled.has(id)) throw new NotEnrolledError(fed.id, id);
        book.online.add(id);
      }),
    onClientDisconnected: (id) =>
      queue.run(async () => {
        book.online.delete(id);
      }),
    idle: () => queue.idle(),
    stop: () => undefined,
  };
}
