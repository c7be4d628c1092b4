import assert from "node:assert/strict";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { connect } from "@nats-io/transport-node";
import { startNatsServer } from "../../../../test/helpers/nats-server.ts";
import { NatsServerNotFoundError } from "./errors.ts";
import { findNatsServer } from "./nats-binary.ts";
import { startLocalNats } from "./nats-supervisor.ts";

async function tempDir(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "tributary-supervisor-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen({ host: "127.0.0.1", port: 0 }, () => {
      const address = server.address();
      resolve(typeof address === "object" && address !== null ? address.port : 0);
    }),
  );
}

const INSTALL_HINT = 'nats-server not found: install it with "apt-get install -y nats-server"';

describe("local nats-server supervisor", { timeout: 45_000 }, () => {
  it("starts JetStream under <dataDir>/nats, falls back to a free port, and serves clients", async (t) => {
    const dataDir = await tempDir(t);
    const blocker = createServer();
    const busyPort = await listen(blocker);
    t.after(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
    const lines: string[] = [];
    const log = { info: (m: string) => lines.push(m), warn: (m: string) => lines.push(m), error: () => {} };
    const nats = await startLocalNats({ dataDir, port: busyPort, log });
    t.after(() => nats.close());
    assert.notEqual(nats.port, busyPort);
    assert.equal(nats.url, `nats://127.0.0.1:${nats.port}`);
    assert.ok(lines.some((l) => l.includes(`port ${busyPort} is busy`) && l.includes(String(nats.port))));
    const nc = await connect({ servers: nats.url });
    t.after(() => nc.close());
    await nc.flush();
    assert.equal(nats.storeDir, join(dataDir, "nats"));
    assert.ok((await stat(join(dataDir, "nats", "jetstream"))).isDirectory());
  });

  it("restarts the server when it dies", async (t) => {
    const dataDir = await tempDir(t);
    const nats = await startLocalNats({ dataDir, port: 0, restartDelayMs: 100 });
    t.after(() => nats.close());
    const firstPid = nats.pid();
    process.kill(firstPid, "SIGKILL");
    const deadline = Date.now() + 10_000;
    while (nats.pid() === firstPid && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.notEqual(nats.pid(), firstPid);
    const nc = await connect({ servers: nats.url });
    await nc.flush();
    await nc.close();
  });

  it("explains how to install nats-server when it is missing", async (t) => {
    const dataDir = await tempDir(t);
    assert.throws(
      () => findNatsServer({ pathEnv: dataDir, extraDirs: [] }),
      (err: unknown) => err instanceof NatsServerNotFoundError && err.message.startsWith(INSTALL_HINT),
    );
    await assert.rejects(
      startLocalNats({ dataDir, binary: join(dataDir, "nats-server") }),
      (err: unknown) =>
        err instanceof NatsServerNotFoundError &&
        err.message.includes("apt-get install -y nats-server") &&
        err.message.includes("TRIBUTARY_NATS_URL"),
    );
    await assert.rejects(startNatsServer({ binary: join(dataDir, "nats-server") }), {
      message: new RegExp(`^${INSTALL_HINT}`),
    });
  });

  it("finds the Debian binary outside a user's PATH", () => {
    const found = findNatsServer({ pathEnv: "/nonexistent" });
    assert.match(found, /\/nats-server$/);
  });
});
