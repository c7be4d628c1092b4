/**
 * The JetStream store on a real 3-node NATS cluster with three replicas
 * (`--store jetstream --replicas 3 --nats-url n1,n2,n3`): a NATS node killed
 * with SIGKILL in the middle of a round loses no acknowledged update, the
 * round goes on, is merged once — equal to merging the clients' adapters
 * directly — and announced once; the node comes back and catches up.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { RoundState } from "@tributary/protocol";
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
import { startNatsCluster, type TestNatsCluster } from "./helpers/nats-cluster.ts";
import { publishedResults } from "./helpers/nats-inspect.ts";

describe("the JetStream store on a 3-node cluster, R3", { timeout: 180_000 }, () => {
  let root: string;
  let cluster: TestNatsCluster;
  let proc: CoordinatorProcess | undefined;
  let conn: ReturnType<typeof clientsFor>;
  let fed: TestFederation;
  const round1 = async () => (await roundOf(conn.operator, fed.federationId))!;
  const send = (i: number) => submitUpdate(conn.client, fed.federationId, fed.clients[i], 1, 100 * (i + 1));

  before(async () => {
    root = await mkdtemp(join(tmpdir(), "tributary-js-cluster-"));
    cluster = await startNatsCluster(3);
    proc = await startCoordinatorProcess({
      dataDir: join(root, "data"),
      natsUrl: cluster.url,
      args: ["--store", "jetstream", "--replicas", "3"],
      timeoutMs: 90_000,
    });
    conn = clientsFor(proc.address);
    fed = await createTestFederation(conn.operator, root, { clients: 3, quorum: 3, rank: 4 });
    await joinAll(conn.client, fed);
  });
  after(async () => {
    conn?.close();
    await proc?.kill("SIGKILL");
    await cluster?.close();
    if (root !== undefined) await rm(root, { recursive: true, force: true });
  });

  it("creates every stream and bucket with three replicas when the coordinator starts", async () => {
    const nc = await connect({ servers: cluster.nodes.map((n) => n.url) });
    try {
      const jsm = await jetstreamManager(nc);
      const names = [
        "TRIBUTARY_JOURNAL",
        "TRIBUTARY_UPLOADS",
        "OBJ_tributary-store",
        "TRIBUTARY_ROUNDS",
        "OBJ_tributary-adapters",
        "KV_tributary-leases",
        "KV_tributary-presence",
      ];
      for (const name of names) {
        const info = await waitFor(`stream ${name}`, () => jsm.streams.info(name).catch(() => undefined));
        assert.equal(info.config.num_replicas, 3, `${name} has ${info.config.num_replicas} replicas`);
      }
    } finally {
      await nc.close();
    }
  });

  it("loses nothing when a NATS node is killed mid-round", async () => {
    const acks = [await send(0), await send(1)];
    assert.ok(acks.every((a) => a.accepted && !a.duplicate));
    await cluster.nodes[0].kill();
    const r = await waitFor(
      "the round to be readable with a node down",
      async () => (await round1().catch(() => undefined)) ?? undefined,
    );
    assert.equal(r.acceptedUpdates, 2);
    let lastError = "";
    const third = await waitFor(
      "the third update to be accepted with a node down",
      async () => {
        const ack = await send(2).catch((err: unknown) => {
          lastError = String(err);
          return undefined;
        });
        return ack?.accepted === true ? ack : undefined;
      },
      60_000,
      500,
    ).catch((err: unknown) => {
      throw new Error(
        `${(err as Error).message}; last: ${lastError}; the coordinator said:\n${proc!.stderr().slice(-3000)}`,
      );
    });
    assert.equal(third.accepted, true);
    let lastState = "";
    const published = await waitFor(
      "round 1 to be published and announced",
      async () => {
        const now = await round1();
        lastState = `${RoundState[now.state]} with ${now.acceptedUpdates} updates ${now.failureReason}`;
        if (now.state === RoundState.FAILED) assert.fail(`round 1 failed: ${now.failureReason}`);
        if (now.state !== RoundState.PUBLISHED) return undefined;
        // Read from a live node; while streams re-elect their leaders a read may time out.
        const p = await publishedResults(cluster.nodes[1].url, fed.federationId).catch(() => undefined);
        return p !== undefined && p.announcements.length > 0 && { round: now, p };
      },
      60_000,
    ).catch((err: unknown) => {
      throw new Error(
        `${(err as Error).message}; round 1 was ${lastState}; the coordinator said:\n${proc!.stderr().slice(-3000)}`,
      );
    });
    assert.equal(published.p.announcements.length, 1, "announced once");
    void lastState;
    await assertRoundEqualsDirectMerge(conn.client, fed, {
      round: 1,
      contentHash: published.round.resultContentHash,
      rank: 4,
    });
    await cluster.nodes[0].restart();
  });
});
