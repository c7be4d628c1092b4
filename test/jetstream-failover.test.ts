/**
 * Two coordinators on one JetStream store (`--store jetstream`, leases of
 * 2 s): a federation created through one is served by the other at once;
 * one of them leads it. The leader is killed with SIGKILL after two of three
 * updates were acknowledged, in the middle of the third's upload; the third
 * client resumes it on the survivor from the offset it reports there, and the
 * survivor takes the
 * lead within the lease's bound, resumes the round with every acknowledged
 * update, and merges and announces it exactly once — equal to merging the
 * clients' adapters directly. Each coordinator's status lists the clients
 * connected to the other, the leaders and the coordinators alive.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import {
  GetStatusRequestSchema,
  type GetStatusResponse,
  GetUploadStatusRequestSchema,
  type GetUploadStatusResponse,
  ListRoundsRequestSchema,
  type ListRoundsResponse,
  RoundState,
} from "@tributary/protocol";
import type { JournalEvent } from "../server/src/core/store.ts";
import { type CoordinatorProcess, startCoordinatorProcess } from "./helpers/coordinator-process.ts";
import { assertRoundEqualsDirectMerge } from "./helpers/direct-merge.ts";
import { waitFor } from "./helpers/expect.ts";
import {
  createTestFederation,
  joinAll,
  OPERATOR_TOKEN,
  roundOf,
  submitUpdate,
  type TestFederation,
} from "./helpers/federation.ts";
import { bearer, call, clientsFor, upload } from "./helpers/grpc-calls.ts";
import { journal, leaseHolder, publishedResults } from "./helpers/nats-inspect.ts";
import { startNatsServer, type TestNatsServer } from "./helpers/nats-server.ts";

const LEASE_S = 2;

describe("two coordinators on one JetStream store", { timeout: 120_000 }, () => {
  let root: string;
  let nats: TestNatsServer;
  const procs = new Map<string, CoordinatorProcess>();
  const conns = new Map<string, ReturnType<typeof clientsFor>>();
  let fed: TestFederation;
  const operatorMd = bearer(OPERATOR_TOKEN);
  const rounds = async (at: string) =>
    (
      (await call(
        conns.get(at)!.operator.listRounds,
        conns.get(at)!.operator,
        create(ListRoundsRequestSchema, { federationId: fed.federationId }),
        operatorMd,
      )) as ListRoundsResponse
    ).rounds;
  const round1 = (at: string) => roundOf(conns.get(at)!.operator, fed.federationId);
  const status = async (at: string) =>
    (await call(
      conns.get(at)!.operator.getStatus,
      conns.get(at)!.operator,
      create(GetStatusRequestSchema),
      operatorMd,
    )) as GetStatusResponse;
  const send = (at: string, i: number) =>
    submitUpdate(conns.get(at)!.client, fed.federationId, fed.clients[i], 1, 100 * (i + 1));

  before(async () => {
    root = await mkdtemp(join(tmpdir(), "tributary-failover-"));
    nats = await startNatsServer({ jetstream: true });
    for (const id of ["coord-a", "coord-b"]) {
      const proc = await startCoordinatorProcess({
        dataDir: join(root, id),
        natsUrl: nats.url,
        args: ["--store", "jetstream", "--coordinator-id", id, "--lease-ttl", String(LEASE_S)],
      });
      procs.set(id, proc);
      conns.set(id, clientsFor(proc.address));
    }
  });
  after(async () => {
    for (const c of conns.values()) c.close();
    for (const p of procs.values()) await p.kill("SIGKILL");
    await nats?.close();
    if (root !== undefined) await rm(root, { recursive: true, force: true });
  });

  it("fails over to the survivor, which finishes the round once with every acknowledged update", async () => {
    fed = await createTestFederation(conns.get("coord-a")!.operator, root, {
      clients: 3,
      quorum: 3,
      rank: 4,
    });
    // Served by the other coordinator at once.
    assert.deepEqual(
      await waitFor("coord-b to serve the federation", () => rounds("coord-b").catch(() => undefined)).catch(
        (err: unknown) => {
          throw new Error(
            `${(err as Error).message}; coord-b said:\n${procs.get("coord-b")!.stderr().slice(-4000)}`,
          );
        },
      ),
      [],
    );
    const leader = await waitFor("a leader", () => leaseHolder(nats.url, fed.federationId));
    const survivor = leader === "coord-a" ? "coord-b" : "coord-a";
    await joinAll(conns.get(leader)!.client, fed);
    await waitFor("round 1 to open", async () => (await rounds(leader))[0]?.state === RoundState.OPEN);
    // Every coordinator's status shows the clients of the other, the leader, and who is alive.
    await waitFor("the survivor's status to show the leader's clients and the leader", async () => {
      const st = await status(survivor);
      return (
        st.coordinatorId === survivor &&
        st.connectedClients.filter((c) => c.coordinatorId === leader).length === 3 &&
        st.leaders.some((l) => l.federationId === fed.federationId && l.coordinatorId === leader) &&
        st.coordinators.length === 2
      );
    });
    const acks = [await send(leader, 0), await send(leader, 1)];
    assert.ok(acks.every((a) => a.accepted && !a.duplicate));

    // The third client's upload is cut halfway on the leader …
    const c3 = fed.clients[2];
    const half = Math.floor(c3.bytes.length / 2);
    const part = (at: string, extra: { stopAt?: number; resumeOffset?: number }) =>
      upload(conns.get(at)!.client, c3.token, {
        federationId: fed.federationId,
        round: 1,
        clientId: c3.id,
        updateId: `u-${c3.id}`,
        samples: 300,
        configJson: c3.configJson,
        bytes: c3.bytes,
        ...extra,
      });
    await assert.rejects(part(leader, { stopAt: half }));

    await procs.get(leader)!.kill("SIGKILL");
    const killedAt = Date.now();
    // … and resumed on the survivor, leader or not yet, from the offset it reports there.
    const status3 = (await call(
      conns.get(survivor)!.client.getUploadStatus,
      conns.get(survivor)!.client,
      create(GetUploadStatusRequestSchema, {
        federationId: fed.federationId,
        round: 1,
        updateId: `u-${c3.id}`,
      }),
      bearer(c3.token),
    )) as GetUploadStatusResponse;
    assert.equal(Number(status3.receivedBytes), half, "the bytes staged through the dead leader are kept");
    const third = await part(survivor, { resumeOffset: half });
    assert.equal(third.accepted, true);
    const published = await waitFor(
      "round 1 to be published and announced by the survivor",
      async () => {
        const r1 = await round1(survivor);
        if (r1?.state === RoundState.FAILED) assert.fail(`round 1 failed: ${r1.failureReason}`);
        if (r1?.state !== RoundState.PUBLISHED) return undefined;
        const p = await publishedResults(nats.url, fed.federationId);
        return p.announcements.length > 0 && { round: r1, p };
      },
      30_000,
    );
    const events = await journal(nats.url);
    const elected = events.filter(
      (e): e is Extract<JournalEvent, { type: "leader-elected" }> => e.type === "leader-elected",
    );
    assert.deepEqual(
      elected.map((e) => e.leader.coordinatorId),
      [leader, survivor],
    );
    const failoverMs = elected[1].at - killedAt;
    console.log(
      `fail-over: ${survivor} journaled its election ${failoverMs} ms after ${leader} was killed (lease ${LEASE_S} s)`,
    );
    assert.ok(failoverMs < 3 * LEASE_S * 1000, `fail-over took ${failoverMs} ms with a ${LEASE_S} s lease`);
    const merged = events.filter((e) => e.type === "round-merged" && e.round.number === 1);
    assert.equal(merged.length, 1, "round 1 merged once");
    assert.equal(published.p.announcements.length, 1, "round 1 announced once");
    assert.equal(
      events.filter((e) => e.type === "update-accepted").length,
      3,
      "every acknowledged update is in the round",
    );
    const after = await status(survivor);
    assert.deepEqual(
      after.leaders.map((l) => [l.federationId, l.coordinatorId]),
      [[fed.federationId, survivor]],
    );
    await assertRoundEqualsDirectMerge(conns.get(survivor)!.client, fed, {
      round: 1,
      contentHash: published.round.resultContentHash,
      rank: 4,
    });
  });
});
