import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { UnknownFederationError } from "../coordinator/errors.ts";
import { fakeReader, T0 } from "./testing/fake-reader.ts";
import { federationsView, roundsView } from "./views.ts";

describe("operator page views", () => {
  it("lists federations with their clients and current round", () => {
    const [f] = federationsView(fakeReader());
    assert.equal(f.id, "fed-1");
    assert.equal(f.method, "fedavg");
    assert.equal(f.policy.quorum, 2);
    assert.deepEqual(
      f.clients.map((c) => [c.id, c.connected]),
      [
        ["client-1", true],
        ["client-2", true],
        ["client-3", false],
      ],
    );
    assert.deepEqual(f.currentRound, { number: 2, state: "open" });
    assert.deepEqual(
      f.clients.map((c) => [c.id, c.lastSeenAt, c.lastRound]),
      [
        ["client-1", T0 + 9000, 2],
        ["client-2", T0 + 9000, 1],
        ["client-3", null, null],
      ],
    );
    assert.equal(f.waitingReason, null, "a round is open");
    assert.equal(f.rounds, 2);
    assert.equal(f.publishedRounds, 1);
    assert.equal(f.leader, null, "a coordinator alone names no leader");
  });

  it("names the federation's leader when several coordinators share the store", () => {
    const reader = fakeReader();
    const shared = {
      ...reader,
      cluster: () => ({
        coordinatorId: "coord-2",
        leaders: [{ federationId: "fed-1", coordinatorId: "coord-1", term: 7, address: "10.0.0.5:7070" }],
        coordinators: [],
        remoteClients: [],
        workers: [],
      }),
    };
    assert.deepEqual(federationsView(shared)[0].leader, {
      coordinatorId: "coord-1",
      term: 7,
      address: "10.0.0.5:7070",
      here: false,
    });
  });

  it("gives each round its timing, stragglers and per-client submissions", async () => {
    const view = await roundsView(fakeReader(), "fed-1", T0 + 10_000);
    assert.equal(view.total, 2);
    const [r1, r2] = view.rounds;
    assert.equal(r1.durationMs, 7000);
    assert.equal(r1.mergeMs, 400);
    assert.deepEqual(r1.stragglers, ["client-3"]);
    assert.equal(r1.bytes, 2048 + 4096);
    assert.equal(r1.samples, 400);
    assert.equal(r1.quorum, 2);
    assert.deepEqual(
      r1.submissions.map((s) => [s.clientId, s.offsetMs, s.size, s.samples, s.weight, s.afterQuorum]),
      [
        ["client-1", 2000, 2048, 300, 0.75, false],
        ["client-2", 4500, 4096, 100, 0.25, true],
      ],
    );
    // The open round: running duration, no weights yet, the missing clients.
    assert.equal(r2.state, "open");
    assert.equal(r2.durationMs, 2000);
    assert.equal(r2.mergeMs, null);
    assert.equal(r2.submissions[0].weight, null);
    assert.deepEqual(r2.stragglers, ["client-2", "client-3"]);
  });

  it("lists refused updates by round, client metrics and their sample-weighted mean", async () => {
    const [r1, r2] = (await roundsView(fakeReader(), "fed-1", T0 + 10_000)).rounds;
    assert.deepEqual(r1.refusals, []);
    assert.deepEqual(r2.refusals, [
      {
        clientId: "client-3",
        updateId: "u-3",
        at: T0 + 9500,
        offsetMs: 1500,
        reason: "INVALID_TENSOR",
        message: 'update from client "client-3": tensor "x" has value NaN at index 0',
      },
    ]);
    assert.deepEqual(
      r1.submissions.map((s) => s.metrics),
      [{ loss: 0.5 }, { loss: 0.9 }],
    );
    assert.ok(Math.abs(r1.metricsMean.loss - (0.5 * 300 + 0.9 * 100) / 400) < 1e-12);
    assert.deepEqual(r2.metricsMean, {});
  });

  it("keeps only the latest rounds under a limit, and names unknown federations", async () => {
    const view = await roundsView(fakeReader(), "fed-1", T0, 1);
    assert.deepEqual(
      view.rounds.map((r) => r.number),
      [2],
    );
    await assert.rejects(roundsView(fakeReader(), "nope", T0), UnknownFederationError);
  });
});
