/**
 * The round state machine of one federation: OPEN → MERGING → PUBLISHED, or
 * FAILED / ABORTED. Time comes from an injected `Clock` and every side effect
 * (journal, merge, notifications) from coordinator-provided callbacks, so the
 * scheduler does no I/O. Every transition runs on one serial queue and is
 * journaled (`persistRound`) before it counts, so concurrent events cannot
 * close a round twice and a restart resumes from the journal (`recover`).
 */

import type { RoundRecord, UpdateRecord } from "../core/model.ts";
import { canOpenRound, selectCohort } from "./cohort.ts";
import { NotEnrolledError, RoundStateError, UnknownRoundError } from "./errors.ts";
import type { RoundScheduler, RoundSchedulerOptions } from "./round-scheduler-types.ts";
import { createSerialQueue } from "./serial-queue.ts";
import { admitToRound } from "./update-validator.ts";

export type {
  RoundScheduler,
  RoundSchedulerOptions,
  SchedulerEffects,
  SchedulerSnapshot,
} from "./round-scheduler-types.ts";

/** Delay before a timer transition that failed (e.g. the journal was down) is retried. */
export const RETRY_MS = 1_000;

const isRunning = (r: RoundRecord | undefined): boolean => r?.state === "open" || r?.state === "merging";

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
  const rounds = new Map<number, RoundRecord>();
  for (const r of opts.initial?.rounds ?? []) rounds.set(r.number, r);
  let latest = Math.max(0, ...rounds.keys());
  const updates = new Map<number, UpdateRecord[]>();
  for (const u of opts.initial?.updates ?? []) updates.set(u.round, [...(updates.get(u.round) ?? []), u]);
  const enrolled = new Set(opts.initial?.enrolled ?? []);
  const online = new Set([...(opts.initial?.connected ?? [])].filter((id) => enrolled.has(id)));
  const timers = new Set<() => void>();
  let recovered = false;
  let stopped = false;

  const current = (): RoundRecord | undefined => rounds.get(latest);
  const acceptedIn = (n: number): readonly UpdateRecord[] => updates.get(n) ?? [];
  const fail = (detail: string): never => {
    throw new RoundStateError(fed.id, detail);
  };
  const ensureRecovered = (): void => {
    if (!recovered) throw new Error(`round scheduler of federation "${fed.id}": call recover() first`);
  };
  /** Runs a transition on the queue once `recover` has run. */
  const transition = <T>(task: () => Promise<T>): Promise<T> => {
    ensureRecovered();
    return queue.run(task);
  };

  const cancelTimers = (): void => {
    for (const cancel of timers) cancel();
    timers.clear();
  };
  /** Runs `handler` on the queue at `at`; a failure is reported and retried after `RETRY_MS`. */
  const armTimer = (at: number, handler: () => Promise<void>): void => {
    const fire = (): void => {
      if (stopped) return;
      queue.run(handler).catch((err: unknown) => {
        effects.reportError(err);
        if (!stopped) timers.add(clock.setTimer(clock.now() + RETRY_MS, fire));
      });
    };
    timers.add(clock.setTimer(at, fire));
  };

  /** Tells watchers. Never throws. */
  const announce = async (r: RoundRecord): Promise<RoundRecord> => {
    try {
      await effects.broadcast(r, acceptedIn(r.number).length);
    } catch (err) {
      effects.reportError(err);
    }
    return r;
  };
  /**
   * Journals `next`, makes it the round's state, and tells watchers. Timers
   * are cancelled by callers only after this succeeds, so a failed journal
   * write leaves the round exactly as it was, deadline included.
   */
  const commit = async (next: RoundRecord): Promise<RoundRecord> => {
    await effects.persistRound(next);
    rounds.set(next.number, next);
    latest = Math.max(latest, next.number);
    return announce(next);
  };

  const kickMerge = (r: RoundRecord): void => {
    const batch = [...acceptedIn(r.number)].sort((x, y) => (x.clientId < y.clientId ? -1 : 1));
    let started: Promise<void> | void;
    try {
      started = effects.startMerge(r, batch);
    } catch (err) {
      started = Promise.reject(err);
    }
    Promise.resolve(started).catch((err: unknown) => {
      queue.run(() => failMerge(r.number, err)).catch((e: unknown) => effects.reportError(e));
    });
  };
  const closeToMerge = async (r: RoundRecord): Promise<RoundRecord> => {
    const next = await commit({ ...r, state: "merging", closedAt: clock.now() });
    cancelTimers();
    kickMerge(next);
    return next;
  };
  const failRound = async (r: RoundRecord, reason: string): Promise<RoundRecord> => {
    const next = await commit({
      ...r,
      state: "failed",
      closedAt: r.closedAt ?? clock.now(),
      failure: reason,
    });
    cancelTimers();
    await advance();
    return next;
  };

  const openRound = async (): Promise<RoundRecord> => {
    const number = latest + 1;
    const now = clock.now();
    const r = await commit({
      federationId: fed.id,
      number,
      state: "open",
      openedAt: now,
      deadlineAt: now + policy.deadlineMs,
      extended: false,
      cohort: selectCohort(policy, online, number),
    });
    armOpen(r);
    return r;
  };
  /** Opens a round when none is running, the last one was not aborted, and enough clients are connected. */
  const maybeAutoOpen = async (): Promise<void> => {
    const last = current();
    if (stopped || isRunning(last) || last?.state === "aborted") return;
    if (last !== undefined && policy.autoAdvance === false) return;
    if (canOpenRound(policy, online.size)) await openRound();
  };
  /** `maybeAutoOpen` after another change has counted: a failure is reported and retried, not thrown. */
  const advance = async (): Promise<void> => {
    try {
      await maybeAutoOpen();
    } catch (err) {
      effects.reportError(err);
      armTimer(clock.now() + RETRY_MS, maybeAutoOpen);
    }
  };

  const armOpen = (r: RoundRecord): void => {
    cancelTimers();
    armTimer(r.deadlineAt, () => onDeadline(r.number));
    if (r.quorumAt !== undefined)
      armTimer(r.quorumAt + policy.waitAfterQuorumMs, () => onQuorumWait(r.number));
  };
  const openRoundNumbered = (n: number): RoundRecord | undefined => {
    const r = current();
    return r !== undefined && r.number === n && r.state === "open" ? r : undefined;
  };
  const onDeadline = async (n: number): Promise<void> => {
    const r = openRoundNumbered(n);
    if (r === undefined || clock.now() < r.deadlineAt) return;
    const count = acceptedIn(n).length;
    if (count >= policy.quorum) {
      await closeToMerge(r);
    } else if (policy.onDeadline === "extend-once" && !r.extended) {
      armOpen(await commit({ ...r, deadlineAt: r.deadlineAt + policy.deadlineMs, extended: true }));
    } else {
      const extension = r.extended ? " (deadline extended once)" : "";
      await failRound(r, `no quorum by the deadline: ${count} of ${policy.quorum} updates${extension}`);
    }
  };
  const onQuorumWait = async (n: number): Promise<void> => {
    const r = openRoundNumbered(n);
    if (r?.quorumAt !== undefined && clock.now() >= r.quorumAt + policy.waitAfterQuorumMs) {
      await closeToMerge(r);
    }
  };
  /** After an update (or at recovery): record quorum, and close when the wait is over or everyone submitted. */
  const checkQuorum = async (r: RoundRecord): Promise<void> => {
    const got = acceptedIn(r.number);
    if (got.length < policy.quorum) return armOpen(r);
    const now = clock.now();
    const quorumAt = r.quorumAt ?? now;
    const everyone = r.cohort.every((id) => got.some((u) => u.clientId === id));
    if (everyone || now >= quorumAt + policy.waitAfterQuorumMs) {
      await closeToMerge({ ...r, quorumAt });
    } else if (r.quorumAt === undefined) {
      armOpen(await commit({ ...r, quorumAt }));
    } else {
      armOpen(r);
    }
  };
  /** Announces the new accepted-update count of open round `n`, then checks its quorum. */
  const recheck = async (n: number): Promise<void> => {
    const r = openRoundNumbered(n);
    if (r !== undefined) await checkQuorum(await announce(r));
  };
  const failMerge = async (n: number, error: unknown): Promise<RoundRecord> => {
    const r = rounds.get(n) ?? fail(`no round ${n} to fail`);
    const reason = `merge failed: ${error instanceof Error ? error.message : String(error)}`;
    if (r.state === "failed" && r.failure === reason) return r;
    if (r.state !== "merging") fail(`round ${n} is ${r.state}, not merging; its merge failure is ignored`);
    return failRound(r, reason);
  };
  /** The running round, checked against the number an operator named. */
  const runningRound = (n: number | undefined, action: string): RoundRecord => {
    const r = current();
    if (n !== undefined && r?.number !== n) {
      if (!rounds.has(n)) throw new UnknownRoundError(fed.id, n);
      fail(`cannot ${action} round ${n}: it is ${rounds.get(n)!.state}`);
    }
    if (r === undefined) return fail(`cannot ${action}: no round has been opened`);
    return r;
  };

  return {
    recover: () => {
      if (recovered) return Promise.reject(new Error(`federation "${fed.id}": recover() called twice`));
      recovered = true;
      return queue.run(async () => {
        const r = current();
        if (r?.state === "open") await checkQuorum(r);
        else if (r?.state === "merging") kickMerge(r);
        else if (r?.state === "published") await announce(r);
        await advance();
      });
    },
    current,
    round: (n) => rounds.get(n),
    accepted: acceptedIn,
    stragglers(n) {
      const r = rounds.get(n);
      if (r === undefined) throw new UnknownRoundError(fed.id, n);
      const got = new Set(acceptedIn(n).map((u) => u.clientId));
      return r.cohort.filter((id) => !got.has(id));
    },
    connected: () => [...online].sort(),
    startRound: () =>
      transition(async () => {
        const r = current();
        if (isRunning(r)) fail(`round ${r!.number} is ${r!.state}; close or abort it first`);
        const need = Math.max(policy.minClients, policy.quorum);
        if (!canOpenRound(policy, online.size)) fail(`${online.size} clients connected, ${need} needed`);
        return openRound();
      }),
    closeRound: (n) =>
      transition(async () => {
        const r = runningRound(n, "close");
        if (r.state !== "open") fail(`round ${r.number} is ${r.state}, not open`);
        if (acceptedIn(r.number).length === 0) {
          fail(`round ${r.number} has no accepted update to merge; abort it instead`);
        }
        return closeToMerge(r);
      }),
    abortRound: (reason, n) =>
      transition(async () => {
        const r = runningRound(n, "abort");
        if (!isRunning(r))
          fail(`round ${r.number} is ${r.state}; only an open or merging round can be aborted`);
        const failure = reason === "" ? "aborted by the operator" : reason;
        const next = await commit({ ...r, state: "aborted", closedAt: r.closedAt ?? clock.now(), failure });
        cancelTimers();
        return next;
      }),
    onUpdateAccepted: (u) =>
      transition(async () => {
        if (u.federationId !== fed.id)
          fail(`update of client "${u.clientId}" belongs to "${u.federationId}"`);
        const claim = { ...u, federationId: fed.id, sha256Hex: u.sha256 };
        const decision = admitToRound(claim, current(), acceptedIn(u.round));
        if (decision.kind === "duplicate") return decision;
        await effects.persistUpdate(u);
        updates.set(u.round, [...acceptedIn(u.round), u]);
        // The update is accepted from here on: a failure to close the round is
        // the scheduler's to retry, not the client's.
        await recheck(u.round).catch((err: unknown) => {
          effects.reportError(err);
          armTimer(clock.now() + RETRY_MS, () => recheck(u.round));
        });
        return decision;
      }),
    onMergeFinished: (n, resultHash) =>
      transition(async () => {
        const r = rounds.get(n) ?? fail(`no round ${n} to publish`);
        if (r.state === "published" && r.resultHash === resultHash) return r;
        if (r.state !== "merging")
          fail(`round ${n} is ${r.state}, not merging; merge result ${resultHash} ignored`);
        const next = await commit({ ...r, state: "published", resultHash });
        await advance();
        return next;
      }),
    onMergeFailed: (n, error) => transition(() => failMerge(n, error)),
    markPublished: (n) =>
      transition(async () => {
        const r = rounds.get(n) ?? fail(`no round ${n} to mark published`);
        if (r.state !== "published") fail(`round ${n} is ${r.state}; only a merged round can be announced`);
        if (r.published === true) return r;
        const done: RoundRecord = { ...r, published: true };
        await effects.persistRound(done);
        rounds.set(n, done);
        return done;
      }),
    onClientEnrolled: (id) =>
      transition(async () => {
        enrolled.add(id);
      }),
    onClientConnected: (id) =>
      transition(async () => {
        if (!enrolled.has(id)) throw new NotEnrolledError(fed.id, id);
        online.add(id);
        await advance();
      }),
    onClientDisconnected: (id) =>
      transition(async () => {
        online.delete(id);
      }),
    idle: () => queue.idle(),
    stop() {
      stopped = true;
      cancelTimers();
    },
  };
}
