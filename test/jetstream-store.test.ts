/**
 * `tributary serve --store jetstream`: the journal, the updates and the
 * merged adapters live in JetStream, not in the data directory. A
 * coordinator killed with SIGKILL is replaced by one on another, empty data
 * directory: it has every acknowledged update and the open round, an upload
 * cut on the first resumes on the second from the offset it reports, and the
 * round is merged once — equal to merging the clients' adapters directly —
 * and announced once.
 */
import assert from "node:assert/strict";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { GetUploadStatusRequestSchema, type GetUploadStatusResponse, RoundState } from "@tributary/protocol";
import { type CoordinatorProcess, startCoordinatorProcess } from "./helpers/coordinator-process.ts";
import { assertRoundEqualsDirectMerge } from "./helpers/direct-merge.ts";
import { waitFor } from "./helpers/expect.ts";
import { createTestFederation, joinAll, roundOf, type TestFederation } from "./helpers/federation.ts";
import { bearer, call, clientsFor, upload } from "./helpers/grpc-calls.ts";
import { publishedResults } from "./helpers/nats-inspect.ts";
import { startNatsServer, type TestNatsServer } from "./helpers/nats-server.ts";

describe("the JetStream store under tributary serve", { timeout: 120_000 }, () => {
  let root: string;
  let nats: TestNatsServer;
  let proc: CoordinatorProcess | undefined;
  let conn: ReturnType<typeof clientsFor>;
  let fed: TestFederation;
  const serve = (dataDir: string, port?: number) =>
    startCoordinatorProcess({
      dataDir,
      natsUrl: nats.url,
      ...(port !== undefined ? { port } : {}),
      args: ["--store", "jetstream"],
    });
  const round1 = async () => (await roundOf(conn.operator, fed.federationId))!;
  const send = (i: number, part: { resumeOffset?: number; stopAt?: number } = {}) => {
    const c = fed.clients[i];
    return upload(conn.client, c.token, {
      federationId: fed.federationId,
      round: 1,
      clientId: c.id,
      updateId: `u-${c.id}`,
      samples: 100 * (i + 1),
      configJson: c.configJson,
      bytes: c.bytes,
      ...part,
    });
  };

  before(async () => {
    root = await mkdtemp(join(tmpdir(), "tributary-js-store-"));
    nats = await startNatsServer({ jetstream: true });
    proc = await serve(join(root, "first"));
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

  it("survives its coordinator: another on an empty data dir resumes the round, and the upload", async () => {
    const acks = [await send(0), await send(1)];
    assert.ok(acks.every((a) => a.accepted && !a.duplicate));
    // Nothing of the round is in the first coordinator's data directory but a cache.
    assert.ok(!(await readdir(join(root, "first"))).includes("journal.jsonl"));
    const port = proc!.port;
    await proc!.kill("SIGKILL");
    proc = await serve(join(root, "second"), port);

    const r = await round1();
    assert.equal(r.state, RoundState.OPEN);
    assert.equal(r.acceptedUpdates, 2);
    assert.equal((await send(1)).duplicate, true, "a retry of an update acknowledged before the crash");

    // client-3's upload is cut after its first half; it asks where it stands, and resumes.
    const third = fed.clients[2];
    const half = Math.floor(third.bytes.length / 2);
    await assert.rejects(send(2, { stopAt: half }));
    const status = (await call(
      conn.client.getUploadStatus,
      conn.client,
      create(GetUploadStatusRequestSchema, {
        federationId: fed.federationId,
        round: 1,
        updateId: `u-${third.id}`,
      }),
      bearer(third.token),
    )) as GetUploadStatusResponse;
    assert.equal(Number(status.receivedBytes), half);
    const resumed = await send(2, { resumeOffset: half });
    assert.equal(resumed.accepted, true);

    const published = await waitFor("round 1 to be published and announced", async () => {
      const now = await round1();
      if (now.state === RoundState.FAILED) assert.fail(`round 1 failed: ${now.failureReason}`);
      if (now.state !== RoundState.PUBLISHED) return undefined;
      const p = await publishedResults(nats.url, fed.federationId);
      return p.announcements.length > 0 && { round: now, p };
    });
    assert.equal(published.p.announcements.length, 1);
    await assertRoundEqualsDirectMerge(conn.client, fed, {
      round: 1,
      contentHash: published.round.resultContentHash,
      rank: 4,
    });
  });
});
