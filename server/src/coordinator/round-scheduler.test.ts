import assert from "node:assert/strict";
import { test } from "node:test";
import type { RoundPolicy, RoundRecord, UpdateRecord } from "../core/model.ts";
import type { NewRoundFlowEvent } from "../core/store.ts";
import { createFakeClock } from "../core/testing/fake-clock.ts";
import { NotEnrolledError, RoundStateError, StaleRoundError } from "./errors.ts";
import { createRoundScheduler, RETRY_MS, type SchedulerSnapshot } from "./round-scheduler.ts";
import { roundResult, testFederation, updateRecord } from "./testing/fixtures.ts";

const T0 = 1_000_000;
const CLIENTS = ["a", "b", "c", "d", "e"];

/**
 * A scheduler over a fake clock whose journal records what it was asked, with
 * the coordinator's reaction to it: a `round-closed` round is merged (and a
 * round recovered MERGING is merged again), a rejected merge fails the round.
 */
async function harness(policy: Partial<RoundPolicy> = {}, initial: SchedulerSnapshot = {}) {
  const federation = testFederation(policy);
  const clock = createFakeClock(T0);
  const events: NewRoundFlowEvent[] = [];
  const journal: RoundRecord[] = [];
  const stored: UpdateRecord[] = [];
  const merges: { round: RoundRecord; updates: readonly UpdateRecord[] }[] = [];
  const errors: unknown[] = [];
  let failPersists = 0;
  let skipPersists = 0;
  let mergeResult: Promise<void> | undefined;
  const merge = (round: RoundRecord): void => {
    const updates = [...scheduler.accepted(round.number)].sort((x, y) => (x.clientId < y.clientId ? -1 : 1));
    merges.push({ round, updates });
    mergeResult?.catch((err: unknown) => scheduler.onMergeFailed(round.number, err));
  };
  const scheduler = createRoundScheduler({
    federation,
    clock,
    initial: { enrolled: CLIENTS, ...initial },
    effects: {
      async journal(e) {
        await Promise.resolve();
        if (e.type === "update-accepted") {
          stored.push(e.update);
        } else {
          if (skipPersists > 0) skipPersists--;
          else if (failPersists > 0) {
            failPersists--;
            throw new Error("journal unavailable");
          }
          journal.push(e.round);
        }
        events.push(e);
        if (e.type === "round-closed") merge(e.round);
      },
      reportError: (err) => errors.push(err),
    },
  });
  await scheduler.recover();
  const recovered = scheduler.current();
  if (recovered?.state === "merging") merge(recovered);
  return {
    scheduler,
    clock,
    events,
    journal,
    stored,
    merges,
    errors,
    /** Fails `n` journal writes of round events after letting `skip` through. */
    failNextPersists: (n: number, skip = 0) => {
      failPersists = n;
      skipPersists = skip;
    },
    rejectMerges: (err: Error) => {
      mergeResult = Promise.reject(err);
      mergeResult.catch(() => undefined);
    },
    /** Moves time by `ms` and waits for the transitions it caused. */
    advance: async (ms: number) => {
      clock.advance(ms);
      await scheduler.idle();
    },
    connect: async (...ids: string[]) => {
      for (const id of ids) await scheduler.onClientConnected(id);
    },
    submit: (id: string, round = scheduler.current()?.number ?? 1) =>
      scheduler.onUpdateAccepted(updateRecord(id, round, { receivedAt: clock.now() })),
    /** Reports round `n` merged into an adapter of hash `hash`. */
    merged: (n: number, hash: string) => scheduler.onMergeFinished(n, roundResult(n, hash)),
  };
}

test("a round opens automatically once minClients are connected", async () => {
  const h = await harness({ minClients: 3 });
  await h.connect("a", "b");
  assert.equal(h.scheduler.current(), undefined);
  await h.connect("c");
  const r = h.scheduler.current()!;
  assert.equal(r.state, "open");
  assert.equal(r.number, 1);
  assert.deepEqual(r.cohort, ["a", "b", "c"]);
  assert.equal(r.deadlineAt, T0 + 60_000);
  assert.deepEqual(h.journal, [r]);
  assert.deepEqual(h.events, [{ type: "round-opened", round: r }]);
  await assert.rejects(h.scheduler.onClientConnected("mallory"), NotEnrolledError);
});

test("the cohort follows cohortSize and rotates between rounds", async () => {
  const h = await harness({ cohortSize: 2, minClients: 5 });
  await h.connect(...CLIENTS);
  assert.deepEqual(h.scheduler.current()!.cohort, ["a", "b"]);
  await assert.rejects(h.submit("c"), /"c" is not in the cohort of round 1/);
  await h.submit("a");
  await h.submit("b");
  await h.merged(1, "f".repeat(64));
  assert.deepEqual(h.scheduler.current()!.cohort, ["c", "d"]);
});

test("quorum closes the round after waitAfterQuorumMs", async () => {
  const h = await harness({ waitAfterQuorumMs: 1_000 }, { connected: ["a", "b", "c"] });
  await h.submit("b");
  await h.advance(500);
  await h.submit("a");
  assert.equal(h.scheduler.current()!.quorumAt, T0 + 500);
  assert.equal(h.scheduler.current()!.state, "open");
  await h.advance(999);
  assert.equal(h.scheduler.current()!.state, "open");
  await h.advance(1);
  const r = h.scheduler.current()!;
  assert.equal(r.state, "merging");
  assert.equal(r.closedAt, T0 + 1_500);
  assert.equal(h.merges.length, 1);
  assert.deepEqual(
    h.merges[0].updates.map((u) => u.clientId),
    ["a", "b"],
  );
  assert.deepEqual(h.scheduler.stragglers(1), ["c"]);
  await assert.rejects(h.submit("c", 1), (err: unknown) => {
    assert.ok(err instanceof StaleRoundError);
    assert.match(err.message, /round 1 is not open.*current round is 1 \(merging\)/);
    return true;
  });
});

test("the round closes early when the whole cohort has submitted", async () => {
  const h = await harness({ waitAfterQuorumMs: 30_000 }, { connected: ["a", "b", "c"] });
  await h.submit("a");
  await h.submit("b");
  assert.equal(h.scheduler.current()!.state, "open");
  await h.submit("c");
  assert.equal(h.scheduler.current()!.state, "merging");
  assert.equal(h.merges.length, 1);
  assert.deepEqual(h.clock.pending(), []);
});

test("startMerge runs once even when updates arrive concurrently", async () => {
  const h = await harness({ quorum: 2 }, { connected: ["a", "b", "c", "d"] });
  const results = await Promise.allSettled(["a", "b", "c", "d"].map((id) => h.submit(id)));
  assert.equal(h.merges.length, 1);
  assert.equal(h.merges[0].updates.length, 2);
  assert.deepEqual(
    results.map((r) => r.status),
    ["fulfilled", "fulfilled", "rejected", "rejected"],
  );
  for (const r of results.slice(2)) assert.ok(r.status === "rejected" && r.reason instanceof StaleRoundError);
  assert.deepEqual(h.scheduler.stragglers(1), ["c", "d"]);
  // A retried update is idempotent and not journaled twice.
  assert.equal((await h.submit("a", 1)).kind, "duplicate");
  assert.equal(h.stored.length, 2);
});

test("deadline without quorum: fail at once, then the next round opens", async () => {
  const h = await harness({ onDeadline: "fail" }, { connected: ["a", "b"] });
  await h.submit("a");
  await h.advance(60_000);
  const failed = h.scheduler.round(1)!;
  assert.equal(failed.state, "failed");
  assert.match(failed.failure ?? "", /no quorum by the deadline: 1 of 2 updates/);
  assert.equal(h.merges.length, 0);
  assert.equal(h.scheduler.current()!.number, 2);
  assert.equal(h.scheduler.current()!.state, "open");
});

test("deadline without quorum: extend once, then fail", async () => {
  const h = await harness({ onDeadline: "extend-once", autoAdvance: false }, { connected: ["a", "b"] });
  await h.advance(60_000);
  const extended = h.scheduler.current()!;
  assert.equal(extended.state, "open");
  assert.equal(extended.extended, true);
  assert.equal(extended.deadlineAt, T0 + 120_000);
  await h.advance(59_999);
  assert.equal(h.scheduler.current()!.state, "open");
  await h.advance(1);
  assert.equal(h.scheduler.current()!.state, "failed");
  assert.match(h.scheduler.current()!.failure ?? "", /0 of 2 updates \(deadline extended once\)/);
  assert.equal(h.scheduler.current()!.number, 1, "autoAdvance false: no new round");
});

test("the deadline is hard: a quorum still waiting for stragglers merges at it", async () => {
  const h = await harness({ waitAfterQuorumMs: 120_000 }, { connected: ["a", "b", "c"] });
  await h.submit("a");
  await h.submit("b");
  await h.advance(60_000);
  assert.equal(h.scheduler.current()!.state, "merging");
  assert.equal(h.merges.length, 1);
});

test("operator close merges what there is, or refuses an empty round", async () => {
  const h = await harness({ quorum: 3 }, { connected: ["a", "b", "c"] });
  await assert.rejects(h.scheduler.closeRound(1), (err: unknown) => {
    assert.ok(err instanceof RoundStateError);
    assert.match(err.message, /round 1 has no accepted update/);
    return true;
  });
  assert.equal(h.scheduler.current()!.state, "open");
  await h.submit("b");
  const closed = await h.scheduler.closeRound(1);
  assert.equal(closed.state, "merging");
  assert.equal(h.merges.length, 1);
  await assert.rejects(h.scheduler.closeRound(), /round 1 is merging, not open/);
  await assert.rejects(h.scheduler.startRound(), /round 1 is merging/);
});

test("operator abort stops the round; startRound resumes", async () => {
  const h = await harness({}, { connected: ["a", "b"] });
  const aborted = await h.scheduler.abortRound("bad base model", 1);
  assert.equal(aborted.state, "aborted");
  assert.equal(aborted.failure, "bad base model");
  assert.deepEqual(h.clock.pending(), []);
  await h.connect("c");
  assert.equal(h.scheduler.current()!.number, 1, "no automatic round after an abort");
  await assert.rejects(h.scheduler.abortRound("again"), /round 1 is aborted/);
  await assert.rejects(h.scheduler.abortRound("x", 7), /no round 7/);
  const next = await h.scheduler.startRound();
  assert.equal(next.number, 2);
  assert.deepEqual(next.cohort, ["a", "b", "c"]);
});

test("merge results publish or fail the round, then the next round opens", async () => {
  const h = await harness({}, { connected: ["a", "b"] });
  await h.submit("a");
  await h.submit("b");
  const hash = "0".repeat(64);
  const published = await h.merged(1, hash);
  assert.equal(published.state, "published");
  assert.equal(published.resultHash, hash);
  assert.equal(published.published, undefined, "not announced on NATS yet");
  assert.deepEqual(await h.merged(1, hash), published);
  const announced = await h.scheduler.markPublished(1);
  assert.equal(announced.published, true);
  assert.equal(h.scheduler.round(1)!.published, true);
  assert.deepEqual(await h.scheduler.markPublished(1), announced, "idempotent");
  await assert.rejects(h.merged(1, "1".repeat(64)), RoundStateError);
  assert.equal(h.scheduler.current()!.number, 2);
  h.rejectMerges(new Error("out of memory"));
  await h.submit("a");
  await h.submit("b");
  await h.scheduler.idle();
  assert.equal(h.scheduler.round(2)!.state, "failed");
  assert.equal(h.scheduler.round(2)!.failure, "merge failed: out of memory");
  assert.equal(h.scheduler.current()!.number, 3);
});

test("a transition counts only once journaled; failed timer transitions are retried", async () => {
  const h = await harness({}, { connected: ["a", "b"] });
  h.failNextPersists(1);
  await h.advance(60_000);
  assert.equal(h.scheduler.current()!.state, "open");
  assert.equal(h.errors.length, 1);
  await h.advance(RETRY_MS);
  assert.equal(h.scheduler.round(1)!.state, "failed");
  // Round 2 opened; its update is accepted even if closing the round fails for a while.
  await h.submit("a");
  h.failNextPersists(1);
  assert.equal((await h.submit("b")).kind, "new");
  assert.equal(h.scheduler.current()!.state, "open");
  assert.equal(h.errors.length, 2);
  assert.ok(h.clock.pending().includes(h.clock.now() + RETRY_MS), "retry armed, deadline kept");
  await h.advance(RETRY_MS);
  assert.equal(h.scheduler.current()!.state, "merging");
  assert.equal(h.merges.length, 1);
  // Publishing counts even if opening the next round fails; the opening is retried.
  h.failNextPersists(1, 1);
  assert.equal((await h.merged(2, "a".repeat(64))).state, "published");
  assert.equal(h.scheduler.current()!.number, 2);
  await h.advance(RETRY_MS);
  assert.equal(h.scheduler.current()!.number, 3);
});

function openRound(extra: Partial<RoundRecord> = {}): RoundRecord {
  return {
    federationId: "fed-1",
    number: 4,
    state: "open",
    openedAt: T0 - 10_000,
    deadlineAt: T0 + 50_000,
    extended: false,
    cohort: ["a", "b", "c"],
    ...extra,
  };
}

test("recover an open round: timers re-armed, accepted updates kept", async () => {
  const h = await harness({}, { rounds: [openRound()], updates: [updateRecord("a", 4)], connected: [] });
  assert.deepEqual(h.clock.pending(), [T0 + 50_000]);
  assert.equal(h.scheduler.accepted(4).length, 1);
  assert.equal((await h.submit("a")).kind, "duplicate");
  await h.submit("c");
  assert.equal(h.scheduler.current()!.state, "merging");
  assert.deepEqual(
    h.merges[0].updates.map((u) => u.clientId),
    ["a", "c"],
  );
});

test("recover an open round whose deadline passed during the outage", async () => {
  const h = await harness({ autoAdvance: false }, { rounds: [openRound({ deadlineAt: T0 - 1 })] });
  await h.advance(0);
  assert.equal(h.scheduler.current()!.state, "failed");
});

test("recover a merging round: the merge is started again, once", async () => {
  const merging = openRound({ state: "merging", closedAt: T0 - 5 });
  const updates = [updateRecord("b", 4), updateRecord("a", 4), updateRecord("a", 3)];
  const h = await harness({}, { rounds: [merging], updates, connected: ["a", "b", "c"] });
  await h.scheduler.idle();
  assert.equal(h.merges.length, 1);
  assert.deepEqual(h.merges[0].round, merging);
  assert.deepEqual(
    h.merges[0].updates.map((u) => u.clientId),
    ["a", "b"],
  );
  assert.equal(h.scheduler.current()!.number, 4, "no new round while merging");
  await h.merged(4, "e".repeat(64));
  assert.equal(h.scheduler.current()!.number, 5);
});

test("recover a published round: nothing is merged again", async () => {
  const published = openRound({ state: "published", resultHash: "d".repeat(64), published: true });
  const h = await harness(
    {},
    { rounds: [published], updates: [updateRecord("a", 4)], connected: ["a", "b"] },
  );
  assert.equal(h.merges.length, 0);
  assert.equal(h.scheduler.current()!.number, 5, "auto-advance resumes");
  const unannounced = openRound({ state: "published", resultHash: "d".repeat(64) });
  const h2 = await harness({ autoAdvance: false }, { rounds: [unannounced] });
  assert.equal(h2.merges.length, 0);
  assert.deepEqual(h2.events, [], "recovering a merged round journals nothing");
  assert.equal(h2.scheduler.current()!.published, undefined, "left for the publish outbox");
});
