/**
 * `kill -9` of a coordinator process: after a restart on the same data dir
 * and port, every acknowledged update is still there and the round goes on;
 * it is merged exactly once and announced exactly once on NATS — also when
 * the crash fell between storing the merged adapter and journaling it.
 */
import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import {
  ListRoundsRequestSchema,
  type ListRoundsResponse,
  ListUpdatesRequestSchema,
  type ListUpdatesResponse,
  RoundState,
} from "@tributary/protocol";
import type { RoundRecord } from "../server/src/core/model.ts";
import type { JournalEvent } from "../server/src/core/store.ts";
import { type CoordinatorProcess, startCoordinatorProcess } from "./helpers/coordinator-process.ts";
import { waitFor } from "./helpers/expect.ts";
import { createTestFederation, joinAll, OPERATOR_TOKEN, type TestFederation } from "./helpers/federation.ts";
import { bearer, call, clientsFor, upload } from "./helpers/grpc-calls.ts";
import { publishedResults } from "./helpers/nats-inspect.ts";
import { startNatsServer, type TestNatsServer } from "./helpers/nats-server.ts";

async function journal(dataDir: string): Promise<JournalEvent[]> {
  const text = await readFile(join(dataDir, "journal.jsonl"), "utf8");
  return text
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as JournalEvent);
}

const isRoundEvent = (e: JournalEvent): e is JournalEvent & { round: RoundRecord } => "round" in e;

describe("a coordinator process killed with SIGKILL", () => {
  let root: string;
  let dataDir: string;
  let nats: TestNatsServer;
  let proc: CoordinatorProcess | undefined;
  let conn: ReturnType<typeof clientsFor>;
  let fed: TestFederation;
  let resultHash: string;
  const operatorMd = bearer(OPERATOR_TOKEN);

  const restart = async (port: number) => {
    proc = await startCoordinatorProcess({ dataDir, natsUrl: nats.url, port });
    assert.equal(proc.port, port);
  };
  const listRounds = async () =>
    (
      (await call(
        conn.operator.listRounds,
        conn.operator,
        create(ListRoundsRequestSchema, { federationId: fed.federationId }),
        operatorMd,
      )) as ListRoundsResponse
    ).rounds;
  const round1Published = () =>
    waitFor("round 1 to be published and announced", async () => {
      const r = (await listRounds())[0];
      if (r.state === RoundState.FAILED) assert.fail(`round 1 failed: ${r.failureReason}`);
      if (r.state !== RoundState.PUBLISHED) return undefined;
      const published = await publishedResults(nats.url, fed.federationId);
      const flagged = (await journal(dataDir)).some(
        (e) => isRoundEvent(e) && e.round.number === 1 && e.round.published === true,
      );
      return published.announcements.length > 0 && flagged && { round: r, published };
    });

  before(async () => {
    root = await mkdtemp(join(tmpdir(), "tributary-crash-"));
    dataDir = join(root, "data");
    nats = await startNatsServer({ jetstream: true });
    proc = await startCoordinatorProcess({ dataDir, natsUrl: nats.url });
    conn = clientsFor(proc.address);
    fed = await createTestFederation(conn.operator, root, { clients: 3, quorum: 3, rank: 4 });
    await joinAll(conn.client, fed);
  });
  after(async () => {
    conn?.close();
    await proc?.kill("SIGKILL");
    await nats?.close();
    if (root !== undefined) await rm(root, { recursive: true, force: true });
  });

  const send = (i: number) => {
    const c = fed.clients[i];
    return upload(conn.client, c.token, {
      federationId: fed.federationId,
      round: 1,
      clientId: c.id,
      updateId: `u-${c.id}`,
      samples: 100 * (i + 1),
      configJson: c.configJson,
      bytes: c.bytes,
    });
  };

  it("keeps the acknowledged updates and the open round, and merges it exactly once", async () => {
    const acks = [await send(0), await send(1)];
    assert.ok(acks.every((a) => a.accepted && !a.duplicate));
    const port = proc!.port;
    await proc!.kill("SIGKILL");
    await restart(port);

    const [r1] = await listRounds();
    assert.equal(r1.number, 1);
    assert.equal(r1.state, RoundState.OPEN);
    assert.equal(r1.acceptedUpdates, 2);
    const updates = (
      (await call(
        conn.operator.listUpdates,
        conn.operator,
        create(ListUpdatesRequestSchema, { federationId: fed.federationId, round: 1 }),
        operatorMd,
      )) as ListUpdatesResponse
    ).updates;
    assert.deepEqual(
      updates.map((u) => [u.clientId, u.updateId]),
      [
        ["client-1", "u-client-1"],
        ["client-2", "u-client-2"],
      ],
    );
    // A retry of an update acknowledged before the crash is a duplicate.
    assert.equal((await send(1)).duplicate, true);

    const third = await send(2);
    assert.equal(third.accepted, true);
    assert.equal(third.duplicate, false);
    const { round, published } = await round1Published();
    resultHash = round.resultContentHash;
    assert.match(resultHash, /^[0-9a-f]{64}$/);
    assert.deepEqual(published.announcements, [
      { ...published.announcements[0], round: 1, contentHash: resultHash },
    ]);
    const prefix = `${fed.federationId}/round-1/${resultHash}`;
    assert.deepEqual(published.objects, [
      `${prefix}/adapter_config.json`,
      `${prefix}/adapter_model.safetensors`,
    ]);
    const events = await journal(dataDir);
    const merges = events.filter(
      (e) => isRoundEvent(e) && e.round.number === 1 && e.round.state === "published" && !e.round.published,
    );
    assert.equal(merges.length, 1, "round 1 was merged more than once");
    assert.deepEqual(await readdir(join(dataDir, "adapters")), [resultHash]);
  });

  it("re-uses the stored result after a crash between storing and journaling the merge", async () => {
    const port = proc!.port;
    await proc!.kill("SIGKILL");
    // The crash happened after the merged adapter was stored, before the
    // round's PUBLISHED state was journaled: cut the journal there.
    const events = await journal(dataDir);
    const cut = events.findIndex(
      (e) => isRoundEvent(e) && e.round.number === 1 && e.round.state === "published",
    );
    assert.ok(cut > 0);
    const before = events[cut - 1];
    assert.equal(isRoundEvent(before) && before.round.state, "merging");
    await writeFile(
      join(dataDir, "journal.jsonl"),
      events
        .slice(0, cut)
        .map((e) => `${JSON.stringify(e)}\n`)
        .join(""),
    );
    await restart(port);

    const { round, published } = await round1Published();
    assert.equal(round.resultContentHash, resultHash, "round 1 was merged again into another adapter");
    assert.equal(published.announcements.length, 1, "round 1 was announced twice");
    assert.equal(published.objects.length, 2);
    assert.deepEqual(await readdir(join(dataDir, "adapters")), [resultHash]);
  });
});
