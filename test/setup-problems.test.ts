/**
 * A machine without `nats-server`, as a new user meets it: `npm start` (the
 * compiled `tributary serve` under the telemetry preload) and `npm run demo`
 * each print one short message saying how to install it or how to point at an
 * existing server, exit non-zero, and print no stack trace or minified source.
 * `TRIBUTARY_NATS_SERVER` names a binary that does not exist, so the search
 * finds nothing. And `--store jetstream` pointed at a cluster nobody runs says
 * so the same way.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { type AddressInfo, createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** Runs `node args…` from the repository root without a nats-server; exit code and stderr. */
function runWithoutNats(
  args: readonly string[],
  natsUrl = "",
): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      args,
      {
        cwd: ROOT,
        timeout: 60_000,
        env: {
          ...process.env,
          TRIBUTARY_NATS_SERVER: "/nonexistent/nats-server",
          TRIBUTARY_NATS_URL: natsUrl,
        },
      },
      (err, _stdout, stderr) =>
        resolve({ code: err === null ? 0 : ((err.code as number | null) ?? null), stderr }),
    );
  });
}

/** The lines a person reads, without the coordinator's JSON log lines. */
const messageLines = (stderr: string) =>
  stderr.split("\n").filter((l) => l.trim() !== "" && !l.startsWith("{"));

function assertOneShortMessage(stderr: string, prefix: string): void {
  const lines = messageLines(stderr);
  assert.equal(lines.length, 1, `expected one message line, got:\n${stderr}`);
  assert.ok(lines[0].startsWith(`${prefix}: nats-server not found`), lines[0]);
  assert.match(lines[0], /apt-get install -y nats-server/);
  assert.match(lines[0], /--nats-url/);
  assert.ok(lines[0].length < 400, `message is ${lines[0].length} characters`);
  assert.doesNotMatch(stderr, /^\s+at /m, "no stack trace");
}

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "tributary-setup-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("missing nats-server", { timeout: 120_000 }, () => {
  it("npm start: one message, exit code 1", async () => {
    const { code, stderr } = await runWithoutNats([
      "--import",
      "./server/telemetry.mjs",
      "server/bin/tributary.mjs",
      "serve",
      "--data-dir",
      join(dir, "coordinator"),
      "--port",
      "0",
      "--ui-port",
      "off",
      "--metrics-port",
      "0",
    ]);
    assert.equal(code, 1);
    assertOneShortMessage(stderr, "tributary");
  });

  it("npm run demo: one message before any training, exit code 1", async () => {
    const { code, stderr } = await runWithoutNats([
      "server/dist/demo/federated-demo.js",
      "--rounds",
      "1",
      "--data-dir",
      join(dir, "demo"),
    ]);
    assert.equal(code, 1);
    assertOneShortMessage(stderr, "demo");
  });
});

describe("an unreachable JetStream cluster", { timeout: 120_000 }, () => {
  it("tributary serve --store jetstream: one message naming the servers, exit code 1", async () => {
    const { server, port } = await closedPort();
    const url = `nats://127.0.0.1:${port},nats://127.0.0.1:${port}`;
    server.close();
    const { code, stderr } = await runWithoutNats(
      [
        "server/bin/tributary.mjs",
        "serve",
        "--store",
        "jetstream",
        "--data-dir",
        join(dir, "coordinator-js"),
        "--port",
        "0",
        "--ui-port",
        "off",
      ],
      url,
    );
    assert.equal(code, 1);
    const lines = messageLines(stderr);
    assert.equal(lines.length, 1, `expected one message line, got:\n${stderr}`);
    assert.ok(lines[0].startsWith("tributary: could not reach the NATS JetStream cluster at "), lines[0]);
    assert.ok(lines[0].includes(`127.0.0.1:${port}`), lines[0]);
    assert.match(lines[0], /--nats-url/);
    assert.doesNotMatch(stderr, /^\s+at /m, "no stack trace");
  });
});

/** A port that was free a moment ago (its listener is closed by the caller before use). */
function closedPort(): Promise<{ server: Server; port: number }> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => resolve({ server, port: (server.address() as AddressInfo).port }));
  });
}
