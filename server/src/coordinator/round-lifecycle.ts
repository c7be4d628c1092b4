/**
 * The transitions a round goes through on its own, as updates arrive and time
 * passes: opening (automatically when enough clients are connected), quorum,
 * the wait for stragglers, the deadline (extend once or fail), closing for the
 * merge, failing. Each is journaled before it counts (a failed write leaves the
 * round as it was, deadline included) and runs on the scheduler's queue; the
 * scheduler (`round-scheduler.ts`) adds the operator's and the merge's
 * commands on top.
 */
import type { Clock } from "../core/clock.ts";
import type { Federation, RoundRecord } from "../core/model.ts";
import type { NewRoundFlowEvent } from "../core/store.ts";
import { canOpenRound, selectCohort } from "./cohort.ts";
import { RoundStateError } from "./errors.ts";
import { privacyCheck } from "./privacy-ledger.ts";
import { isRunning, type RoundBook } from "./round-book.ts";
import { ClientsBelowQuorumError } from "./round-merge.ts";
import type { SchedulerEffects } from "./round-scheduler-types.ts";
import { RETRY_MS, type RoundTimers } from "./round-timers.ts";

/** Round events that carry only the round's new record. */
export type RoundChangeType = Exclude<NewRoundFlowEvent["type"], "update-accepted" | "round-merged">;

/** A federation's round life-cycle (see the module comment); call only on the scheduler's queue. */
export interface RoundLifecycle {
  /** Journals `next` as `type`, then makes it the round's state. */
  commit(type: RoundChangeType, next: RoundRecord): Promise<RoundRecord>;
  /** Opens the next round now. */
  openRound(): Promise<RoundRecord>;
  /** Opens a round if one should open now; a failure is reported and retried, not thrown. */
  advance(): Promise<void>;
  /** After an update (or at recovery): records quorum, closes when the wait is over or everyone submitted. */
  checkQuorum(n: number): Promise<void>;
  closeToMerge(r: RoundRecord): Promise<RoundRecord>;
  /** Fails round `n`, whose merge failed (idempotent for the same error). */
  failMerge(n: number, error: unknown): Promise<RoundRecord>;
  /** Closes failed round `n` again for another merge, when its merge failed on the coordinator's side. */
  retryMerge(n: number): Promise<RoundRecord>;
  /** Throws `RoundStateError` with `detail`. */
  fail(detail: string): never;
  /** No round opens any more. */
  stop(): void;
}

/** What the life-cycle runs on. */
export interface LifecycleDeps {
  readonly federation: Federation;
  readonly clock: Clock;
  readonly effects: SchedulerEffects;
  readonly book: RoundBook;
  readonly timers: RoundTimers;
}

/** The life-cycle of `deps.federation`'s rounds. */
export function createRoundLifecycle(deps: LifecycleDeps): RoundLifecycle {
  const { federation: fed, clock, effects, book, timers } = deps;
  const policy = fed.policy;
  let stopped = false;
  const fail = (detail: string): never => {
    throw new RoundStateError(fed.id, detail);
  };
  const commit = async (type: RoundChangeType, next: RoundRecord): Promise<RoundRecord> => {
    await effects.journal({ type, round: next });
    book.setRound(next);
    return next;
  };
  const openRunning = (n: number): RoundRecord | undefined => {
    const r = book.current();
    return r?.number === n && r.state === "open" ? r : undefined;
  };

  const closeToMerge = async (r: RoundRecord): Promise<RoundRecord> => {
    const next = await commit("round-closed", { ...r, state: "merging", closedAt: clock.now() });
    timers.cancelAll();
    return next;
  };
  const failRound = async (
    r: RoundRecord,
    failure: string,
    mergeFault?: RoundRecord["mergeFault"],
  ): Promise<RoundRecord> => {
    const next = await commit("round-failed", {
      ...r,
      state: "failed",
      closedAt: r.closedAt ?? clock.now(),
      failure,
      ...(mergeFault !== undefined ? { mergeFault } : {}),
    });
    timers.cancelAll();
    await advance();
    return next;
  };
  /** The clip norm of the next round: the last merged round's next one (adaptive), else the spec's. */
  const currentClipNorm = (): number => {
    const merged = book.all().filter((r) => r.resultHash !== undefined);
    const last = merged[merged.length - 1];
    return last?.nextClipNorm ?? last?.clipNorm ?? fed.privacy?.clipNorm ?? 0;
  };
  const openRound = async (): Promise<RoundRecord> => {
    const number = (book.current()?.number ?? 0) + 1;
    const now = clock.now();
    // Buffered rounds have no cohort: every enrolled client may submit at any time.
    const cohort = policy.buffered !== undefined ? [] : selectCohort(policy, book.online, number);
    const r: RoundRecord = {
      federationId: fed.id,
      number,
      state: "open" as const,
      openedAt: now,
      deadlineAt: now + policy.deadlineMs,
      extended: false,
      cohort,
      // The sampling rate the accountant charges this round at, and the clip norm its merge uses.
      ...(fed.privacy !== undefined
        ? { samplingRate: cohort.length / Math.max(1, book.enrolled.size), clipNorm: currentClipNorm() }
        : {}),
    };
    await effects.journal({ type: "round-opened", round: r });
    book.setRound(r);
    armOpen(r);
    return r;
  };
  /** Opens a round when none is running, the last was not aborted, and enough clients are connected. */
  const maybeAutoOpen = async (): Promise<void> => {
    const last = book.current();
    if (stopped || isRunning(last) || last?.state === "aborted") return;
    if (last !== undefined && policy.autoAdvance === false) return;
    if (canOpenRound(policy, book.online.size) && privacyCheck(fed, book)?.ok !== false) await openRound();
  };
  /** `maybeAutoOpen` after another change has counted: a failure is reported and retried, not thrown. */
  const advance = async (): Promise<void> => {
    await maybeAutoOpen().catch((err: unknown) => {
      effects.reportError(err);
      timers.arm(clock.now() + RETRY_MS, maybeAutoOpen);
    });
  };
  const armOpen = (r: RoundRecord): void => {
    timers.cancelAll();
    timers.arm(r.deadlineAt, () => onDeadline(r.number));
    if (r.quorumAt !== undefined)
      timers.arm(r.quorumAt + policy.waitAfterQuorumMs, () => onQuorumWait(r.number));
  };
  const onDeadline = async (n: number): Promise<void> => {
    const r = openRunning(n);
    if (r === undefined || clock.now() < r.deadlineAt) return;
    const count = book.accepted(n).length;
    if (count >= policy.quorum) await closeToMerge(r);
    else if (policy.buffered !== undefined) {
      // A buffer waits for its updates however long they take.
      armOpen(
        await commit("round-extended", { ...r, deadlineAt: clock.now() + policy.deadlineMs, extended: true }),
      );
    } else if (policy.onDeadline === "extend-once" && !r.extended) {
      armOpen(
        await commit("round-extended", {
          ...r,
          deadlineAt: r.deadlineAt + policy.deadlineMs,
          extended: true,
        }),
      );
    } else {
      const extension = r.extended ? " (deadline extended once)" : "";
      await failRound(r, `no quorum by the deadline: ${count} of ${policy.quorum} updates${extension}`);
    }
  };
  const onQuorumWait = async (n: number): Promise<void> => {
    const r = openRunning(n);
    if (r?.quorumAt !== undefined && clock.now() >= r.quorumAt + policy.waitAfterQuorumMs)
      await closeToMerge(r);
  };
  /** After an update (or at recovery): record quorum, and close when the wait is over or everyone submitted. */
  const checkQuorum = async (n: number): Promise<void> => {
    const r = openRunning(n);
    if (r === undefined) return;
    const got = book.accepted(n);
    if (got.length < policy.quorum) return armOpen(r);
    const quorumAt = r.quorumAt ?? clock.now();
    const everyone = r.cohort.every((id) => got.some((u) => u.clientId === id));
    if (everyone || clock.now() >= quorumAt + policy.waitAfterQuorumMs)
      await closeToMerge({ ...r, quorumAt });
    else if (r.quorumAt === undefined) armOpen(await commit("round-quorum", { ...r, quorumAt }));
    else armOpen(r);
  };
  const failMerge = async (n: number, error: unknown): Promise<RoundRecord> => {
    const r = book.round(n) ?? fail(`no round ${n} to fail`);
    const reason = `merge failed: ${error instanceof Error ? error.message : String(error)}`;
    if (r.state === "failed" && r.failure === reason) return r;
    if (r.state !== "merging") fail(`round ${n} is ${r.state}, not merging; its merge failure is ignored`);
    return failRound(r, reason, error instanceof ClientsBelowQuorumError ? "clients" : "coordinator");
  };
  const retryMerge = async (n: number): Promise<RoundRecord> => {
    const r = book.round(n) ?? fail(`no round ${n} to merge again`);
    if (r.state !== "failed" || r.mergeFault !== "coordinator") {
      const why =
        r.state !== "failed"
          ? `is ${r.state}`
          : r.mergeFault === "clients"
            ? "failed because of its clients' updates"
            : "did not fail in its merge";
      fail(
        `round ${n} ${why}; only a round whose merge failed on the coordinator's side can be merged again`,
      );
    }
    const { failure: _failure, mergeFault: _fault, ...kept } = r;
    return commit("round-closed", { ...kept, state: "merging" });
  };
  return {
    commit,
    retryMerge,
    openRound,
    advance,
    checkQuorum,
    closeToMerge,
    failMerge,
    fail,
    stop() {
      stopped = true;
    },
  };
}
