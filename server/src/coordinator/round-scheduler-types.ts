/**
 * The contract of the round scheduler (`round-scheduler.ts`): what the
 * coordinator provides (the journal, the journaled snapshot) and what it gets
 * back.
 */

import type { Clock } from "../core/clock.ts";
import type { Federation, RoundRecord, RoundResult, UpdateRecord } from "../core/model.ts";
import type { NewRoundFlowEvent, RoundFlowEvent } from "../core/store.ts";
import type { PrivacyCheck } from "./privacy-ledger.ts";
import type { UpdateDecision } from "./update-validator.ts";

/** The coordinator's side of the scheduler; every call happens inside a transition. */
export interface SchedulerEffects {
  /**
   * Journals a round event (`round-opened`, `update-accepted`, `round-closed`,
   * `round-merged`, …); the transition counts only once this resolves. What
   * follows from it (merging a closed round, announcing a merged one, telling
   * watchers) reacts to the journaled event, not to the scheduler.
   */
  journal(event: NewRoundFlowEvent): Promise<void>;
  /** Errors no caller can receive: failed timer transitions (retried). */
  reportError(err: unknown): void;
}

/** The journaled state a scheduler starts from. */
export interface SchedulerSnapshot {
  readonly rounds?: readonly RoundRecord[];
  /** Accepted updates of every round, in acceptance order. */
  readonly updates?: readonly UpdateRecord[];
  /** Ids of the clients enrolled in the federation. */
  readonly enrolled?: Iterable<string>;
  /** Ids of the enrolled clients connected now. */
  readonly connected?: Iterable<string>;
}

/** What `createRoundScheduler` needs. */
export interface RoundSchedulerOptions {
  readonly federation: Federation;
  readonly clock: Clock;
  readonly initial?: SchedulerSnapshot;
  readonly effects: SchedulerEffects;
}

/** One federation's rounds. Mutating methods resolve once their transition is journaled. */
export interface RoundScheduler {
  /** Resumes from the snapshot; call once, before anything else (also for a new federation). */
  recover(): Promise<void>;
  /** The latest round, whatever its state; `undefined` before the first. */
  current(): RoundRecord | undefined;
  /** Round `n`, if it exists. */
  round(n: number): RoundRecord | undefined;
  /** Updates accepted for round `n`, in acceptance order. */
  accepted(n: number): readonly UpdateRecord[];
  /** Cohort members of round `n` that have not submitted (throws `UnknownRoundError`). */
  stragglers(n: number): string[];
  /** Enrolled clients connected now, sorted. */
  connected(): string[];
  /** Whether `clientId` is enrolled in the federation. */
  isEnrolled(clientId: string): boolean;
  /**
   * With central DP: ε spent, ε if a round opened now, and whether that is
   * within the budget (`ok` always without one); `undefined` without DP.
   */
  privacy(): PrivacyCheck | undefined;
  /** Opens the next round now (`RoundStateError` if one is running or too few clients are connected). */
  startRound(): Promise<RoundRecord>;
  /** Closes the open round and merges what it has (`RoundStateError` if it has no update). */
  closeRound(n?: number): Promise<RoundRecord>;
  /** Stops the open or merging round; no round opens automatically after an abort. */
  abortRound(reason: string, n?: number): Promise<RoundRecord>;
  /** Admits and journals a validated, durably staged update; may close the round. */
  onUpdateAccepted(update: UpdateRecord): Promise<UpdateDecision>;
  /** Journals round `n`'s merged adapter and result (`round-merged`; idempotent for the same hash). */
  onMergeFinished(n: number, result: RoundResult): Promise<RoundRecord>;
  /**
   * Journals that round `n`'s merged adapter was announced on NATS
   * (`published: true`); idempotent. Rounds merged but not yet announced
   * are what the publish outbox retries.
   */
  markPublished(n: number): Promise<RoundRecord>;
  /** Fails round `n` whose merge failed. */
  onMergeFailed(n: number, error: unknown): Promise<RoundRecord>;
  /**
   * Merges failed round `n` again (`round-closed`, then the merge reacts as
   * for any closed round), when its merge failed on the coordinator's side
   * (`mergeFault: "coordinator"`); `RoundStateError` otherwise.
   */
  retryMerge(n: number): Promise<RoundRecord>;
  /** Records a newly enrolled client. */
  onClientEnrolled(clientId: string): Promise<void>;
  /** Marks an enrolled client connected (`NotEnrolledError` otherwise); may open a round. */
  onClientConnected(clientId: string): Promise<void>;
  /** Marks a client disconnected; running rounds keep their cohort. */
  onClientDisconnected(clientId: string): Promise<void>;
  /**
   * Takes in a round event another coordinator journaled (several
   * coordinators on one replicated store): a follower records it; a leader
   * counts an update a follower accepted, and may close the round.
   */
  onForeignEvent(event: RoundFlowEvent): Promise<void>;
  /** Resolves once no transition is queued (for tests and shutdown). */
  idle(): Promise<void>;
  /** Cancels every timer; later timer events are ignored. */
  stop(): void;
}
