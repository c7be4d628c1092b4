import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Objm } from "@nats-io/obj";
import { startNatsServer, type TestNatsServer } from "../../../test/helpers/nats-server.ts";
import type { MergeRunner, ModuleFiles } from "../core/merge-runner.ts";
import { resolveOptions } from "../merge/options.ts";
import { openKvBucket } from "../store-jetstream/kv-bucket.ts";
import { DEFAULT_JETSTREAM_NAMES } from "../store-jetstream/names.ts";
import { type JetStreamHandles, openJetStream } from "../store-jetstream/setup.ts";
import { MERGE_QUEUE, WORKER_TTL_MS } from "./queue.ts";
import { type RemoteMergeRunner, startRemoteMergeRunner } from "./remote-runner.ts";
import { decodeJson, encodeModuleResult, encodeOutcome, type MergeTask } from "./task-codec.ts";
import { announceWorker } from "./worker-registry.ts";

let nats: TestNatsServer;
let h: JetStreamHandles;
let runner: RemoteMergeRunner;
const closers: (() => Promise<void>)[] = [];

/** A local pool that must not be used: every module here goes to the (test's) worker. */
const unusedPool: MergeRunner = {
  backend: { name: "cpu", provider: "none", linalg: "js", skipped: [], stridedProducts: false },
  threads: 1,
  readsFiles: false,
  mergeModule: () => Promise.reject(new Error("merged locally")),
  mergeDense: () => Promise.reject(new Error("merged locally")),
  mergeFiles: () => Promise.reject(new Error("merged locally")),
  close: async () => undefined,
};

const loc = (name: string) => ({
  path: "/cache/u1",
  file: "client c1/adapter_model.safetensors",
  name,
  dtype: "F32",
  shape: [1, 2],
  offset: 64,
  byteLength: 8,
});
const files: ModuleFiles = {
  name: "m",
  dIn: 2,
  dOut: 1,
  clients: [{ rank: 1, scaling: 1, a: loc("a"), b: loc("b") }],
};

before(async () => {
  nats = await startNatsServer({ jetstream: true });
  runner = await startRemoteMergeRunner({
    servers: [nats.url],
    replicas: 1,
    coordinatorId: "leader",
    local: unusedPool,
    locate: () => ({ name: "updates/f/1/c1/u1", size: 72, sha256: "00".repeat(32) }),
  });
  closers.push(() => runner.close());
  h = await openJetStream(DEFAULT_JETSTREAM_NAMES, { servers: [nats.url], replicas: 1, attach: true });
  closers.push(() => h.close());
  const { nc, kv } = await openKvBucket({
    servers: [nats.url],
    name: "test-worker",
    bucket: MERGE_QUEUE.workerBucket,
    ttlMs: WORKER_TTL_MS,
    replicas: 1,
  });
  const registration = await announceWorker(kv, {
    id: "test-worker",
    threads: 1,
    backend: "cpu",
    host: "here",
  });
  closers.push(async () => {
    await registration.stop();
    await nc.close();
  });
});
after(async () => {
  for (const c of closers.reverse()) await c();
  await nats?.close();
});

test("the first outcome of a task is the result; a duplicate is dropped and its result object deleted", async () => {
  const deadline = Date.now() + 5_000;
  while (runner.workers().length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(
    runner.workers().map((w) => w.id),
    ["test-worker"],
  );
  const merging = runner.mergeFiles(files, resolveOptions({ method: "fedavg" }));

  // The test is the worker: it takes the task and answers it twice, as a
  // redelivered task's two workers would.
  const consumer = await h.js.consumers.get(MERGE_QUEUE.taskStream, MERGE_QUEUE.consumer);
  const m = await consumer.next({ expires: 5_000 });
  assert.ok(m !== null, "a task was queued");
  const task = decodeJson<MergeTask>(m.data);
  assert.equal(task.module.clients[0].a.object.name, "updates/f/1/c1/u1", "the task names the stored object");
  const first = {
    name: "m",
    merged: { rank: 1, a: Float32Array.from([1, 2]), b: Float32Array.from([3]) },
    report: { weights: [1], objective: null, residual: null, iterations: 0, solver: "test" },
  };
  await h.js.publish(
    task.replyTo,
    encodeOutcome({ taskId: task.id, worker: "w-a", delivery: 1, ms: 3 }, encodeModuleResult(first)),
  );
  const second = encodeModuleResult({ ...first, merged: { ...first.merged, b: Float32Array.from([99]) } });
  const results = await new Objm(h.bulk.js).open(MERGE_QUEUE.resultBucket);
  const name = task.id;
  await results.putBlob({ name }, second);
  await h.js.publish(
    task.replyTo,
    encodeOutcome({
      taskId: task.id,
      worker: "w-b",
      delivery: 2,
      ms: 4,
      resultObject: { name, size: second.length, sha256: "unused" },
    }),
  );
  m.ack();

  const { result, ms } = await merging;
  assert.deepEqual(result, first);
  assert.equal(ms, 3);
  const gone = Date.now() + 5_000;
  let info = await results.info(name);
  while (info !== null && !info.deleted && Date.now() < gone) {
    await new Promise((r) => setTimeout(r, 50));
    info = await results.info(name);
  }
  assert.ok(info === null || info.deleted, "the duplicate's result object is deleted");
});
