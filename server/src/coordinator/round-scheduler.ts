/**
 * The round state machine of one federation: OPEN → MERGING → PUBLISHED, or
 * FAILED / ABORTED. It decides, and journals what it decided as round events
 * (`round-opened`, `update-accepted`, `round-quorum`, `round-closed`,
 * `round-merged`, …: see `core/store.ts`); merging, announcing and telling
 * watchers react to those events elsewhere (`round-flow.ts`). Time comes from
 * an injected `Clock`; every transition runs on one serial queue and counts
 * only once journaled, so concurrent events cannot close a round twice and a
 * restart resumes from the journal (`recover`). The transitions rounds go
 * through on their own are in `round-lifecycle.ts`; this file adds the
 * commands of clients, operators and the merge.
 */
import type { RoundRecord, RoundResult } from "../core/model.ts";
import { nextClipNorm } from "../merge/dp/adaptive-clip.ts";
import { canOpenRound } from "./cohort.ts";
import { NotEnrolledError, PrivacyBudgetError, UnknownRoundError } from "./errors.ts";
import { privacyAccount, privacyCheck } from "./privacy-ledger.ts";
import { createRoundBook, isRunning } from "./round-book.ts";
import { createRoundLifecycle } from "./round-lifecycle.ts";
import type { RoundScheduler, RoundSchedulerOptions } from "./round-scheduler-types.ts";
import { createRoundTimers, RETRY_MS } from "./round-timers.ts";
import { createSerialQueue } from "./serial-queue.ts";
import { admitToRound } from "./update-validator.ts";

export type {
  RoundScheduler,
  RoundSchedulerOptions,
  SchedulerEffects,
  SchedulerSnapshot,
} from "./round-scheduler-types.ts";
export { RETRY_MS } from "./round-timers.ts";

/**
 * A scheduler for one federation.
 *
 * @example
 * const scheduler = createRoundScheduler({ federation, clock: systemClock, initial: journal, effects });
 * await scheduler.recover();
 * await scheduler.onClientConnected("hospital-3");
 */
export function createRoundScheduler(opts: RoundSchedulerOptions): RoundScheduler {
  const { federation: fed, clock, effects } = opts;
  const policy = fed.policy;
  const queue = createSerialQueue();
  const book = createRoundBook(fed.id, opts.initial);
  const timers = createRoundTimers(clock, queue, effects.reportError);
  const life = createRoundLifecycle({ federation: fed, clock, effects, book, timers });
  const { commit, fail, checkQuorum, advance, closeToMerge, openRound } = life;
  let recovered = false;
  const transition = <T>(task: () => Promise<T>): Promise<T> => {
    if (!recovered) throw new Error(`round scheduler of federation "${fed.id}": call recover() first`);
    return queue.run(task);
  };
  /** The running round, checked against the number an operator named. */
  const runningRound = (n: number | undefined, action: string): RoundRecord => {
    const r = book.current();
    if (n !== undefined && r?.number !== n) {
      if (book.round(n) === undefined) throw new UnknownRoundError(fed.id, n);
      fail(`cannot ${action} round ${n}: it is ${book.round(n)!.state}`);
    }
    return r ?? fail(`cannot ${action}: no round has been opened`);
  };

  return {
    recover() {
      if (recovered) return Promise.reject(new Error(`federation "${fed.id}": recover() called twice`));
      recovered = true;
      return queue.run(async () => {
        const r = book.current();
        if (r?.state === "open") await checkQuorum(r.number);
        await advance();
      });
    },
    current: book.current,
    round: book.round,
    accepted: book.accepted,
    isEnrolled: (clientId) => book.enrolled.has(clientId),
    privacy: () => privacyCheck(fed, book),
    stragglers: book.stragglers,
    connected: book.connected,
    startRound: () =>
      transition(async () => {
        const r = book.current();
        if (isRunning(r)) fail(`round ${r!.number} is ${r!.state}; close or abort it first`);
        const need = Math.max(policy.minClients, policy.quorum);
        if (!canOpenRound(policy, book.online.size))
          fail(`${book.online.size} clients connected, ${need} needed`);
        const privacy = privacyCheck(fed, book);
        if (privacy !== undefined && !privacy.ok)
          throw new PrivacyBudgetError(
            fed.id,
            privacy.spent,
            fed.privacy?.epsilonBudget ?? 0,
            privacy.projected,
          );
        return openRound();
      }),
    closeRound: (n) =>
      transition(async () => {
        const r = runningRound(n, "close");
        if (r.state !== "open") fail(`round ${r.number} is ${r.state}, not open`);
        if (book.accepted(r.number).length === 0)
          fail(`round ${r.number} has no accepted update to merge; abort it instead`);
        return closeToMerge(r);
      }),
    abortRound: (reason, n) =>
      transition(async () => {
        const r = runningRound(n, "abort");
        if (!isRunning(r))
          fail(`round ${r.number} is ${r.state}; only an open or merging round can be aborted`);
        const failure = reason === "" ? "aborted by the operator" : reason;
        const next = await commit("round-aborted", {
          ...r,
          state: "aborted",
          closedAt: r.closedAt ?? clock.now(),
          failure,
        });
        timers.cancelAll();
        return next;
      }),
    onUpdateAccepted: (u) =>
      transition(async () => {
        if (u.federationId !== fed.id)
          fail(`update of client "${u.clientId}" belongs to "${u.federationId}"`);
        const decision = admitToRound(u, book.current(), book.accepted(u.round));
        if (decision.kind === "duplicate") return decision;
        await effects.journal({ type: "update-accepted", update: u });
        book.addUpdate(u);
        // The update is accepted from here on: a failure to close the round is
        // the scheduler's to retry, not the client's.
        await checkQuorum(u.round).catch((err: unknown) => {
          effects.reportError(err);
          timers.arm(clock.now() + RETRY_MS, () => checkQuorum(u.round));
        });
        return decision;
      }),
    onMergeFinished: (n, result: RoundResult) =>
      transition(async () => {
        const r = book.round(n) ?? fail(`no round ${n} to publish`);
        if (r.state === "published" && r.resultHash === result.contentHash) return r;
        if (r.state !== "merging")
          fail(`round ${n} is ${r.state}, not merging; merge result ${result.contentHash} ignored`);
        const merged: RoundRecord = {
          ...r,
          state: "published",
          resultHash: result.contentHash,
          ...(result.rankVariants !== undefined ? { rankVariants: result.rankVariants } : {}),
          ...(result.mergedRank !== undefined ? { mergedRank: result.mergedRank } : {}),
        };
        const next: RoundRecord =
          fed.privacy === undefined || r.samplingRate === undefined
            ? merged
            : {
                ...merged,
                roundEpsilon: privacyAccount(fed.privacy, [merged]).epsilon,
                epsilon: privacyAccount(fed.privacy, [...book.all().filter((x) => x.number !== n), merged])
                  .epsilon,
                ...(fed.privacy.adaptive !== undefined && result.unclippedFraction !== undefined
                  ? {
                      nextClipNorm: nextClipNorm(
                        r.clipNorm ?? fed.privacy.clipNorm,
                        result.unclippedFraction,
                        fed.privacy.adaptive,
                      ),
                    }
                  : {}),
              };
        await effects.journal({ type: "round-merged", round: next, result });
        book.setRound(next);
        await advance();
        return next;
      }),
    onMergeFailed: (n, error) => transition(() => life.failMerge(n, error)),
    retryMerge: (n) => transition(() => life.retryMerge(n)),
    markPublished: (n) =>
      transition(async () => {
        const r = book.round(n) ?? fail(`no round ${n} to mark published`);
        if (r.state !== "published") fail(`round ${n} is ${r.state}; only a merged round can be announced`);
        return r.published === true ? r : commit("round-published", { ...r, published: true });
      }),
    onForeignEvent: (event) =>
      transition(async () => {
        // Only updates reach a leader from others: its rounds' events are its own (fenced by term).
        if (event.type !== "update-accepted") return;
        const u = event.update;
        if (book.accepted(u.round).some((a) => a.clientId === u.clientId)) return;
        book.addUpdate(u);
        await checkQuorum(u.round).catch((err: unknown) => {
          effects.reportError(err);
          timers.arm(clock.now() + RETRY_MS, () => checkQuorum(u.round));
        });
      }),
    onClientEnrolled: (id) =>
      transition(async () => {
        book.enrolled.add(id);
      }),
    onClientConnected: (id) =>
      transition(async () => {
        if (!book.enrolled.has(id)) throw new NotEnrolledError(fed.id, id);
        book.online.add(id);
        await advance();
      }),
    onClientDisconnected: (id) =>
      transition(async () => {
        book.online.delete(id);
      }),
    idle: () => queue.idle(),
    stop() {
      life.stop();
      timers.stop();
    },
  };
}
