/**
 * A client connected to a coordinator that dies carries on through another
 * it was given: two coordinators on one JetStream store, both SDKs
 * connected with `ip:port,ip:port` (the TypeScript client and the Python
 * client). Both join through the first; it is killed with SIGKILL; both
 * then submit to round 1 and get the merged adapter, through the second.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { connect, type TributaryClient } from "../client-sdk/src/index.ts";
import { type CoordinatorProcess, startCoordinatorProcess } from "./helpers/coordinator-process.ts";
import { assertEqualsDirectMerge } from "./helpers/direct-merge.ts";
import { createTestFederation, type TestFederation } from "./helpers/federation.ts";
import { clientsFor } from "./helpers/grpc-calls.ts";
import { startNatsServer, type TestNatsServer } from "./helpers/nats-server.ts";

const PYTHON_DIR = fileURLToPath(new URL("../client-sdk/python", import.meta.url));
const PYTHON = process.env.TRIBUTARY_PYTHON ?? "/usr/bin/python3";
const within = (ms: number) => ({ signal: AbortSignal.timeout(ms) });

describe("both SDKs given two coordinators", { timeout: 120_000 }, () => {
  let root: string;
  let nats: TestNatsServer;
  const procs: CoordinatorProcess[] = [];
  let fed: TestFederation;
  let ts: TributaryClient | undefined;

  before(async () => {
    root = await mkdtemp(join(tmpdir(), "tributary-sdk-failover-"));
    nats = await startNatsServer({ jetstream: true });
    for (const id of ["coord-a", "coord-b"]) {
      procs.push(
        await startCoordinatorProcess({
          dataDir: join(root, id),
          natsUrl: nats.url,
          args: ["--store", "jetstream", "--coordinator-id", id, "--lease-ttl", "2"],
        }),
      );
    }
    const operator = clientsFor(procs[0].address);
    try {
      fed = await createTestFederation(operator.operator, root, { clients: 2, quorum: 2, rank: 4 });
    } finally {
      operator.close();
    }
  });
  after(async () => {
    await ts?.close();
    for (const p of procs) await p.kill("SIGKILL");
    await nats?.close();
    if (root !== undefined) await rm(root, { recursive: true, force: true });
  });

  it("carries on through the second when the first dies", async () => {
    const coordinators = `${procs[0].address},${procs[1].address}`;
    const [c1, c2] = fed.clients;
    ts = connect({ coordinator: coordinators, token: c1.token });
    await ts.join(fed.federationId);

    const specFile = join(root, "python-spec.json");
    await writeFile(
      specFile,
      JSON.stringify({
        coordinators,
        token: c2.token,
        federation: fed.federationId,
        dir: c2.dir,
        samples: 200,
        out: join(root, "python-out"),
      }),
    );
    const py = spawn(PYTHON, [join("tests", "integration", "failover_client.py"), specFile], {
      cwd: PYTHON_DIR,
      env: { ...process.env, PYTHONPATH: PYTHON_DIR, PYTHONDONTWRITEBYTECODE: "1" },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    py.stdout.on("data", (b: Buffer) => {
      stdout += b.toString();
    });
    py.stderr.on("data", (b: Buffer) => {
      stderr += b.toString();
    });
    const exited = new Promise<number | null>((resolve) => py.once("exit", resolve));
    const joined = await Promise.race([
      new Promise<boolean>((resolve) => {
        const check = () => (stdout.includes("joined") ? resolve(true) : setTimeout(check, 50));
        check();
      }),
      exited.then(() => false),
    ]);
    assert.ok(joined, `the Python client did not join:\n${stderr}`);

    // Both joined through the first coordinator: it dies.
    await procs[0].kill("SIGKILL");
    py.stdin.write("go\n");

    const round = await ts.nextRound(within(30_000));
    assert.equal(round.number, 1);
    // FroM does not weight by sample counts: submit needs no options (the count is sent as 0).
    const ack = await ts.submit(1, c1.dir);
    assert.equal(ack.round, 1);
    const result = await ts.waitForResult(1, within(60_000));
    const code = await exited;
    assert.equal(code, 0, `${stdout}\n${stderr}`);
    const out = JSON.parse(stdout.trim().split("\n").at(-1)!) as { round: number; hash: string };
    assert.equal(out.round, 1);
    assert.equal(out.hash, result.contentHash, "both clients got the same merged adapter");
    assert.equal(createHash("sha256").update(result.safetensors).digest("hex"), result.contentHash);
    await assertEqualsDirectMerge(
      { configJson: result.configJson, safetensors: result.safetensors },
      [c1.dir, c2.dir],
      { rank: 4, samples: [100, 200] },
    );
  });
});
