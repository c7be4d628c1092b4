/**
 * Merge workers (`tributary worker`) against a real coordinator on the
 * JetStream store: with two workers attached, the round's modules are merged
 * by the workers and the leader only assembles them, giving the same bytes
 * as the coordinator merging alone; a worker killed with SIGKILL in the
 * middle of a task has that task delivered to the other worker; when the
 * last worker dies mid-task, the leader takes the modules back and merges
 * them itself. Each round is merged once, equal to merging the clients'
 * adapters directly.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import {
  FetchAdapterRequestSchema,
  GetStatusRequestSchema,
  type GetStatusResponse,
  RoundState,
} from "@tributary/protocol";
import { decodeAdapter } from "../server/src/peft/index.ts";
import { type CoordinatorProcess, startCoordinatorProcess } from "./helpers/coordinator-process.ts";
import { assertRoundEqualsDirectMerge } from "./helpers/direct-merge.ts";
import { waitFor } from "./helpers/expect.ts";
import {
  createTestFederation,
  joinAll,
  MODULES,
  OPERATOR_TOKEN,
  roundOf,
  submitUpdate,
  type TestFederation,
} from "./helpers/federation.ts";
import { bearer, call, clientsFor, fetchAdapter } from "./helpers/grpc-calls.ts";
import { startNatsServer, type TestNatsServer } from "./helpers/nats-server.ts";
import { startWorkerProcess, type WorkerProcess } from "./helpers/worker-process.ts";

describe("merge workers", { timeout: 180_000 }, () => {
  let root: string;
  let nats: TestNatsServer;
  let coordinator: CoordinatorProcess;
  let conns: ReturnType<typeof clientsFor>;
  let fed: TestFederation;
  const workers = new Map<string, WorkerProcess>();
  const startWorker = async (id: string, args: readonly string[] = []) => {
    const w = await startWorkerProcess({ id, natsUrl: nats.url, cacheDir: join(root, id), args });
    workers.set(id, w);
    return w;
  };
  /** Submits every client's update to round `n` and waits until it is published. */
  const runRound = async (n: number) => {
    await waitFor(
      `round ${n} to open`,
      async () => (await roundOf(conns.operator, fed.federationId, n))?.state === RoundState.OPEN,
    );
    for (const [i, c] of fed.clients.entries()) {
      assert.equal((await submitUpdate(conns.client, fed.federationId, c, n, 100 * (i + 1))).accepted, true);
    }
    return waitFor(
      `round ${n} to be published`,
      async () => {
        const r = await roundOf(conns.operator, fed.federationId, n);
        if (r?.state === RoundState.FAILED) assert.fail(`round ${n} failed: ${r.failureReason}`);
        return r?.state === RoundState.PUBLISHED ? r : undefined;
      },
      60_000,
    );
  };
  /** Round `n`'s merged factors (the adapter less its metadata, which names the round). */
  const mergedTensors = async (n: number) => {
    const adapter = await fetchAdapter(
      conns.client,
      fed.clients[0].token,
      create(FetchAdapterRequestSchema, {
        federationId: fed.federationId,
        selector: { case: "round", value: n },
      }),
    );
    const decoded = decodeAdapter(adapter.configJson, adapter.bytes, `round ${n}`);
    return new Map([...decoded.modules].map(([name, m]) => [name, { a: m.a, b: m.b, rank: m.rank }]));
  };
  const merged = (w: WorkerProcess) => w.lines().filter((l) => l.msg === "merged module");

  before(async () => {
    root = await mkdtemp(join(tmpdir(), "tributary-workers-"));
    nats = await startNatsServer({ jetstream: true });
    coordinator = await startCoordinatorProcess({
      dataDir: join(root, "coord"),
      natsUrl: nats.url,
      args: ["--store", "jetstream", "--coordinator-id", "coord-a", "--lease-ttl", "2"],
      // The leader's log says which modules went to workers.
      env: { TRIBUTARY_LOG: "info" },
    });
    conns = clientsFor(coordinator.address);
    fed = await createTestFederation(conns.operator, root, { clients: 3, quorum: 3, rank: 4 });
    await startWorker("w1");
    // w2 returns every merged module through the object store (round 2's
    // redelivered task comes back that way), w1 inside its outcome message.
    await startWorker("w2", ["--max-inline-result", "0"]);
    // GetStatus (and `tributary admin status`) lists the workers attached.
    const status = await waitFor("GetStatus to list both workers", async () => {
      const st = (await call(
        conns.operator.getStatus,
        conns.operator,
        create(GetStatusRequestSchema),
        bearer(OPERATOR_TOKEN),
      )) as GetStatusResponse;
      return st.mergeWorkers.length === 2 && st;
    });
    assert.deepEqual(status.mergeWorkers.map((w) => [w.workerId, w.threads]).sort(), [
      ["w1", 4],
      ["w2", 4],
    ]);
    await joinAll(conns.client, fed);
  });
  after(async () => {
    conns?.close();
    for (const w of workers.values()) await w.kill("SIGKILL");
    await coordinator?.kill("SIGKILL");
    await nats?.close();
    if (root !== undefined) await rm(root, { recursive: true, force: true });
  });

  it("merges every module of a round on the workers, equal to the direct merge", async () => {
    const r1 = await runRound(1);
    const done = [...workers.values()].flatMap(merged);
    assert.deepEqual(
      [...new Set(done.map((l) => l.module))].sort(),
      MODULES.map((m) => m.name).sort(),
      "every module merged by a worker",
    );
    assert.match(coordinator.stderr(), /merging on merge workers/);
    await assertRoundEqualsDirectMerge(conns.client, fed, {
      round: 1,
      contentHash: r1.resultContentHash,
      rank: 4,
    });
  });

  it("hands a task whose worker was killed with SIGKILL to the other worker", async () => {
    const w1 = workers.get("w1")!;
    const w2 = workers.get("w2")!;
    const before1 = w1.lines().length;
    // w1 is stopped the moment it starts a task of round 2 (it is fetching the
    // clients' updates then), then killed: the task is in its hands, unacknowledged.
    const taken = w1
      .when((l) => l.msg === "merging module" && w1.lines().indexOf(l) >= before1)
      .then(async (line) => {
        await w1.kill("SIGSTOP");
        await w1.kill("SIGKILL");
        return line;
      });
    const r2Promise = runRound(2);
    const line = await taken;
    const r2 = await r2Promise;
    assert.equal(
      merged(w1).some((l) => l.task === line.task),
      false,
      "w1 was killed before it finished the task",
    );
    const redone = merged(w2).find((l) => l.task === line.task);
    assert.ok(redone !== undefined, `w2 merged ${line.module}, the task w1 held`);
    assert.ok((redone.delivery ?? 0) >= 2, "as a redelivery");
    await assertRoundEqualsDirectMerge(conns.client, fed, {
      round: 2,
      contentHash: r2.resultContentHash,
      rank: 4,
    });
    assert.deepEqual(await mergedTensors(2), await mergedTensors(1), "the same factors, bit for bit");
  });

  it("merges in-process when the last worker dies in the middle of a task", async () => {
    const w2 = workers.get("w2")!;
    const before2 = w2.lines().length;
    const taken = w2
      .when((l) => l.msg === "merging module" && w2.lines().indexOf(l) >= before2)
      .then(() => w2.kill("SIGKILL"));
    const r3 = await runRound(3);
    await taken;
    assert.match(
      coordinator.stderr(),
      /no merge worker is attached any more; merging the modules out in-process/,
    );
    await assertRoundEqualsDirectMerge(conns.client, fed, {
      round: 3,
      contentHash: r3.resultContentHash,
      rank: 4,
    });
    assert.deepEqual(await mergedTensors(3), await mergedTensors(1), "the same factors, bit for bit");
  });
});
