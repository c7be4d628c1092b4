/**
 * The leader killed with SIGKILL in the middle of a merge, then in the
 * middle of publishing, with two coordinators on one JetStream store
 * (leases of 2 s) and a merge worker:
 *
 * - mid-merge: the worker is stopped (SIGSTOP), so the leader's modules wait
 *   in the work queue while it still counts the worker alive; the leader is
 *   killed while round 1 is MERGING, then the worker goes on (SIGCONT);
 * - mid-publish: the leader of round 2 is killed the moment its
 *   `round-merged` event is in the journal, before or while it stores and
 *   announces the adapter.
 *
 * Each time the survivor takes the lead, and the round is merged once and
 * announced once with every acknowledged update, equal to merging the
 * clients' adapters directly.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { jetstream } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { RoundState } from "@tributary/protocol";
import type { JournalEvent } from "../server/src/core/store.ts";
import { type CoordinatorProcess, startCoordinatorProcess } from "./helpers/coordinator-process.ts";
import { assertRoundEqualsDirectMerge } from "./helpers/direct-merge.ts";
import { waitFor } from "./helpers/expect.ts";
import {
  createTestFederation,
  joinAll,
  roundOf,
  submitUpdate,
  type TestFederation,
} from "./helpers/federation.ts";
import { clientsFor } from "./helpers/grpc-calls.ts";
import { journal, leaseHolder, publishedResults } from "./helpers/nats-inspect.ts";
import { startNatsServer, type TestNatsServer } from "./helpers/nats-server.ts";
import { startWorkerProcess, type WorkerProcess } from "./helpers/worker-process.ts";

describe("the leader killed mid-merge and mid-publish", { timeout: 180_000 }, () => {
  let root: string;
  let nats: TestNatsServer;
  let worker: WorkerProcess;
  let fed: TestFederation;
  const procs = new Map<string, CoordinatorProcess>();
  const conns = new Map<string, ReturnType<typeof clientsFor>>();
  const start = async (id: string) => {
    const proc = await startCoordinatorProcess({
      dataDir: join(root, id),
      natsUrl: nats.url,
      args: ["--store", "jetstream", "--coordinator-id", id, "--lease-ttl", "2"],
    });
    procs.set(id, proc);
    conns.set(id, clientsFor(proc.address));
  };
  const alive = () => [...procs.keys()];
  const leaderNow = () => waitFor("a leader", () => leaseHolder(nats.url, fed.federationId));
  const kill = async (id: string) => {
    await procs.get(id)!.kill("SIGKILL");
    conns.get(id)!.close();
    procs.delete(id);
    conns.delete(id);
  };
  /** Every client submits to round `n` through coordinator `at`. */
  const submitAll = async (at: string, n: number) => {
    for (const [i, c] of fed.clients.entries()) {
      const ack = await submitUpdate(conns.get(at)!.client, fed.federationId, c, n, 100 * (i + 1));
      assert.equal(ack.accepted, true);
    }
  };
  /** Round `n` published (on a coordinator alive), announced, and what the journal says of it. */
  const publishedOnce = async (n: number) => {
    const at = alive()[0];
    const round = await waitFor(
      `round ${n} to be published and announced`,
      async () => {
        const r = await roundOf(conns.get(at)!.operator, fed.federationId, n);
        if (r?.state === RoundState.FAILED) assert.fail(`round ${n} failed: ${r.failureReason}`);
        if (r?.state !== RoundState.PUBLISHED) return undefined;
        const p = await publishedResults(nats.url, fed.federationId);
        return p.announcements.some((a) => a.round === n) && r;
      },
      60_000,
    );
    const events = await journal(nats.url);
    const ofRound = (type: JournalEvent["type"]) =>
      events.filter((e) => e.type === type && "round" in e && (e.round as { number?: number }).number === n);
    assert.equal(ofRound("round-merged").length, 1, `round ${n} merged once`);
    const announced = (await publishedResults(nats.url, fed.federationId)).announcements.filter(
      (a) => a.round === n,
    );
    assert.equal(announced.length, 1, `round ${n} announced once`);
    assert.equal(announced[0].contentHash, round.resultContentHash);
    assert.equal(round.acceptedUpdates, fed.clients.length, "every acknowledged update is in the round");
    await assertRoundEqualsDirectMerge(conns.get(at)!.client, fed, {
      round: n,
      contentHash: round.resultContentHash,
      rank: 4,
    });
    return events;
  };

  before(async () => {
    root = await mkdtemp(join(tmpdir(), "tributary-failover-merge-"));
    nats = await startNatsServer({ jetstream: true });
    await start("coord-a");
    await start("coord-b");
    worker = await startWorkerProcess({ id: "w1", natsUrl: nats.url, cacheDir: join(root, "w1") });
    fed = await createTestFederation(conns.get("coord-a")!.operator, root, {
      clients: 3,
      quorum: 3,
      rank: 4,
    });
  });
  after(async () => {
    await worker?.kill("SIGCONT");
    await worker?.kill("SIGKILL");
    for (const c of conns.values()) c.close();
    for (const p of procs.values()) await p.kill("SIGKILL");
    await nats?.close();
    if (root !== undefined) await rm(root, { recursive: true, force: true });
  });

  it("mid-merge: the survivor merges the round the dead leader was merging, once", async () => {
    const leader = await leaderNow();
    await joinAll(conns.get(leader)!.client, fed);
    await waitFor("round 1 to open", async () => {
      const r = await roundOf(conns.get(leader)!.operator, fed.federationId, 1);
      return r?.state === RoundState.OPEN;
    });
    // The worker stops answering but still counts as alive for a few seconds:
    // the leader's modules wait in the queue.
    await worker.kill("SIGSTOP");
    await submitAll(leader, 1);
    await waitFor("round 1 to be merging", async () => {
      const r = await roundOf(conns.get(leader)!.operator, fed.federationId, 1);
      return r?.state === RoundState.MERGING;
    });
    await kill(leader);
    await worker.kill("SIGCONT");
    const events = await publishedOnce(1);
    const elected = events.filter((e) => e.type === "leader-elected");
    assert.equal(elected.length, 2, "the survivor took the lead");
  });

  it("mid-publish: the survivor announces the round the dead leader had merged, once", async () => {
    await start("coord-c");
    const leader = await leaderNow();
    await joinAll(conns.get(leader)!.client, fed);
    await waitFor("round 2 to open", async () => {
      const r = await roundOf(conns.get(leader)!.operator, fed.federationId, 2);
      return r?.state === RoundState.OPEN;
    });
    // Watch the journal from the test's own connection: the leader is killed
    // the moment it has journaled round 2's merge.
    const nc = await connect({ servers: nats.url });
    try {
      const consumer = await jetstream(nc).consumers.get("TRIBUTARY_JOURNAL");
      const messages = await consumer.consume();
      const merged = (async () => {
        for await (const m of messages) {
          const e = m.json<JournalEvent>();
          if (e.type === "round-merged" && e.round.number === 2) return;
        }
      })();
      await submitAll(leader, 2);
      await merged;
      await kill(leader);
      messages.stop();
    } finally {
      await nc.close();
    }
    const before = (await publishedResults(nats.url, fed.federationId)).announcements.filter(
      (a) => a.round === 2,
    );
    console.log(`mid-publish: round 2 had ${before.length} announcement(s) when its leader was killed`);
    await publishedOnce(2);
  });
});
