/**
 * Backpressure on downloads, measured on a real `tributary serve` process:
 * 50 FetchAdapter streams of a 20 MiB merged adapter that never read
 * (13 clients, at most 4 each) leave the coordinator's resident memory about
 * where it was — each stream holds about one 1 MiB chunk (a few MiB with its
 * encoded copies) — instead of one copy of the adapter per stream (1 GB).
 */
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { type ClientHttp2Session, type ClientHttp2Stream, connect as connectHttp2 } from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { FetchAdapterRequestSchema, JoinRequestSchema } from "@tributary/protocol";
import { type CoordinatorProcess, startCoordinatorProcess } from "./helpers/coordinator-process.ts";
import { waitFor } from "./helpers/expect.ts";
import { type BigClient, createBigFederation } from "./helpers/federation.ts";
import { bearer, call, clientsFor, fetchAdapter, upload } from "./helpers/grpc-calls.ts";
import { startNatsServer, type TestNatsServer } from "./helpers/nats-server.ts";
import { unreadDownload } from "./helpers/unread-download.ts";

const STREAMS = 50;
const MiB = 1024 * 1024;

/** Resident memory of process `pid` in bytes (Linux `/proc/<pid>/status`). */
async function rss(pid: number): Promise<number> {
  const m = /VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, "utf8"));
  assert.ok(m !== null, `no VmRSS for process ${pid}`);
  return Number(m[1]) * 1024;
}

describe("50 downloads that never read", { timeout: 180_000 }, () => {
  let root: string;
  let nats: TestNatsServer;
  let proc: CoordinatorProcess;
  let conn: ReturnType<typeof clientsFor>;
  let clients: BigClient[] = [];
  const federationId = "unread-downloads";

  before(async () => {
    root = await mkdtemp(join(tmpdir(), "tributary-unread-"));
    nats = await startNatsServer({ jetstream: true });
    proc = await startCoordinatorProcess({ dataDir: join(root, "data"), natsUrl: nats.url });
    conn = clientsFor(proc.address);
    const ids = Array.from({ length: Math.ceil(STREAMS / 4) }, (_, i) => `reader-${i + 1}`);
    clients = await createBigFederation({ operator: conn.operator, root }, federationId, ids, 7, 20);
    for (const c of clients.slice(0, 2)) {
      await call(conn.client.join, conn.client, create(JoinRequestSchema, { federationId }), bearer(c.token));
    }
    for (const c of clients.slice(0, 2)) {
      await upload(conn.client, c.token, {
        federationId,
        round: 1,
        clientId: c.id,
        updateId: `u-${c.id}`,
        configJson: await readFile(join(c.dir, "adapter_config.json"), "utf8"),
        bytes: c.bytes,
      });
    }
  });
  after(async () => {
    conn?.close();
    await proc?.kill("SIGKILL");
    await nats?.close();
    if (root !== undefined) await rm(root, { recursive: true, force: true });
  });

  it("keeps the coordinator's RSS bounded: about one chunk per stream, not one adapter", async () => {
    const req = create(FetchAdapterRequestSchema, { federationId, selector: { case: "round", value: 1 } });
    const adapterBytes = await waitFor("the merged adapter", async () => {
      try {
        return (await fetchAdapter(conn.client, clients[0].token, req)).bytes.length;
      } catch {
        return undefined;
      }
    });
    assert.ok(adapterBytes > 16 * MiB, `the merged adapter is ${adapterBytes} bytes`);
    // Warm the download path once per client, so the baseline has its code and buffers.
    for (const c of clients) await fetchAdapter(conn.client, c.token, req);
    const before = await rss(proc.pid);

    const sessions: ClientHttp2Session[] = [];
    const streams: ClientHttp2Stream[] = [];
    try {
      for (const [i, c] of clients.entries()) {
        const session = connectHttp2(`http://${proc.address}`);
        session.on("error", () => {});
        sessions.push(session);
        for (let k = 0; k < 4 && i * 4 + k < STREAMS; k++)
          streams.push(unreadDownload(session, c.token, req));
      }
      assert.equal(streams.length, STREAMS);
      // Every stream got its response headers: the coordinator is serving all 50.
      await waitFor("all downloads to start", () => streams.every((s) => s.pending === false));
      await new Promise((r) => setTimeout(r, 2_000));
      const during = await rss(proc.pid);
      const grown = during - before;
      const unbounded = STREAMS * adapterBytes;
      // Bounded: per stream, one 1 MiB chunk waiting on flow control — with its
      // encoded message and gRPC frame, and garbage not yet collected, a few
      // MiB — whatever the adapter's size; unbounded: a copy of the adapter each.
      assert.ok(
        grown < unbounded / 4,
        `RSS grew ${(grown / MiB).toFixed(0)} MiB with ${STREAMS} unread downloads (one adapter copy each would be ${(unbounded / MiB).toFixed(0)} MiB)`,
      );
      assert.ok(
        streams.every((s) => !s.closed),
        "the unread downloads are still open, waiting on flow control",
      );
    } finally {
      for (const s of streams) s.destroy();
      for (const s of sessions) s.destroy();
    }
  });
});
