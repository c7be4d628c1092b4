/**
 * A round that misses its quorum by the deadline: FAILED with a reason (at
 * once with the fail policy, after one extension with extend-once), nothing
 * of it merged, and the next round opens by itself — as a client watching
 * `WatchRounds` sees it.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { status } from "@grpc/grpc-js";
import { ListRoundsRequestSchema, type ListRoundsResponse, RoundState } from "@tributary/protocol";
import { expectStatus } from "./helpers/expect.ts";
import { type Fixture, joinAll, startFixture } from "./helpers/federation.ts";
import { call, upload } from "./helpers/grpc-calls.ts";
import { type RoundWatch, watchRounds } from "./helpers/round-watch.ts";

/**
 * Long enough for the update to arrive before the deadline while the rest of
 * the suite loads the machine: with 1 s, a CI run saw the round fail before
 * its one upload's header was read.
 */
const DEADLINE_MS = 3_000;

describe("deadline without quorum", () => {
  let fx: Fixture;
  const watches: RoundWatch[] = [];
  before(async () => {
    fx = await startFixture({ clients: 3, quorum: 3, deadlineMs: DEADLINE_MS, failAtDeadline: true });
  });
  after(async () => {
    for (const w of watches) w.close();
    await fx.close();
  });

  it("fails the round at the deadline with the fail policy, then opens the next one", async () => {
    const fed = fx.federationId;
    const [c1] = fx.clients;
    const watch = watchRounds(fx.client, c1.token, fed);
    watches.push(watch);
    await fx.joinAll();
    const opened = await watch.next("round 1 OPEN", (r) => r.number === 1 && r.state === RoundState.OPEN);
    await upload(fx.client, c1.token, {
      federationId: fed,
      round: 1,
      clientId: c1.id,
      updateId: "lonely",
      configJson: c1.configJson,
      bytes: c1.bytes,
    });

    const failed = await watch.next("round 1 FAILED", (r) => r.number === 1 && r.state === RoundState.FAILED);
    assert.equal(failed.failureReason, "no quorum by the deadline: 1 of 3 updates");
    assert.equal(failed.acceptedUpdates, 1);
    assert.equal(timestampMs(failed.deadlineTime!), timestampMs(opened.deadlineTime!));
    assert.ok(
      timestampMs(failed.closeTime!) >= timestampMs(opened.deadlineTime!),
      "failed before its deadline",
    );
    assert.equal(failed.resultContentHash, "");

    const next = await watch.next("round 2 OPEN", (r) => r.number === 2 && r.state === RoundState.OPEN);
    assert.deepEqual(next.cohortClientIds, ["client-1", "client-2", "client-3"]);
    assert.equal(next.acceptedUpdates, 0);

    // Nothing of the failed round was merged, and it takes no more updates.
    assert.equal(await fx.service.coordinator.result(fed, 1), undefined);
    const rounds = (await call(
      fx.operator.listRounds,
      fx.operator,
      create(ListRoundsRequestSchema, { federationId: fed }),
      fx.operatorMd,
    )) as ListRoundsResponse;
    // Newest first, as operator.proto documents.
    const numbers = rounds.rounds.map((r) => r.number);
    assert.deepEqual(
      numbers,
      [...numbers].sort((a, b) => b - a),
    );
    const first = rounds.rounds.find((r) => r.number === 1)!;
    assert.equal(first.state, RoundState.FAILED);
    assert.match(first.failureReason, /no quorum by the deadline/);
    const [, c2] = fx.clients;
    await expectStatus(
      upload(fx.client, c2.token, {
        federationId: fed,
        round: 1,
        clientId: c2.id,
        updateId: "too-late",
        configJson: c2.configJson,
        bytes: c2.bytes,
      }),
      status.FAILED_PRECONDITION,
      /round 1 is not open for updates; the current round is 2 \(open\)/,
    );
  });

  it("extends the deadline once with extend-once, then fails and opens the next round", async () => {
    const other = await fx.addFederation({
      id: "fed-extend",
      clients: 3,
      quorum: 3,
      deadlineMs: DEADLINE_MS,
    });
    const watch = watchRounds(fx.client, other.clients[0].token, other.federationId);
    watches.push(watch);
    await joinAll(fx.client, other);
    const isRound1Open = (r: { number: number; state: RoundState }) =>
      r.number === 1 && r.state === RoundState.OPEN;
    const opened = await watch.next("round 1 OPEN", isRound1Open);
    const deadline = timestampMs(opened.deadlineTime!);
    const extended = await watch.next(
      "round 1 extended",
      (r) => isRound1Open(r) && timestampMs(r.deadlineTime!) > deadline,
    );
    assert.equal(timestampMs(extended.deadlineTime!), deadline + DEADLINE_MS);
    assert.ok(Date.now() >= deadline, "extended before the first deadline");

    const failed = await watch.next("round 1 FAILED", (r) => r.number === 1 && r.state === RoundState.FAILED);
    assert.equal(failed.failureReason, "no quorum by the deadline: 0 of 3 updates (deadline extended once)");
    assert.ok(
      timestampMs(failed.closeTime!) >= deadline + DEADLINE_MS,
      "failed before the extended deadline",
    );
    // Extended exactly once: no OPEN message of round 1 with a later deadline.
    const deadlines = new Set(
      watch.seen.filter((r) => isRound1Open(r)).map((r) => timestampMs(r.deadlineTime!)),
    );
    assert.deepEqual([...deadlines], [deadline, deadline + DEADLINE_MS]);

    const next = await watch.next("round 2 OPEN", (r) => r.number === 2 && r.state === RoundState.OPEN);
    assert.equal(next.acceptedUpdates, 0);
    assert.equal(fx.service.coordinator.current(other.federationId)?.number, 2);
  });
});
