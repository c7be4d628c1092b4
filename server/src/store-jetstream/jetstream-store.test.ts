import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { startNatsServer, type TestNatsServer } from "../../../test/helpers/nats-server.ts";
import type { CoordinatorStore, UploadKey, UploadSink } from "../core/store.ts";
import {
  JournalEventError,
  StoreIntegrityError,
  UpdateConflictError,
  UploadStoppedError,
} from "../core/store-errors.ts";
import { serializeSafetensors } from "../peft/index.ts";
import { client, federation, round, sha256, tempDir, updateRecord } from "../store/testing/fixtures.ts";
import { createJetStreamStore } from "./jetstream-store.ts";
import type { JetStreamNames } from "./names.ts";

const MiB = 1 << 20;
let nats: TestNatsServer;
let root = "";
let remove: () => Promise<void> = async () => undefined;
let n = 0;
const stores: CoordinatorStore[] = [];

before(async () => {
  nats = await startNatsServer({ jetstream: true });
  ({ dir: root, remove } = await tempDir());
});
after(async () => {
  for (const s of stores) await s.close();
  await nats?.close();
  await remove();
});

/** Stream and bucket names of a deployment of its own on the shared server. */
function deployment(): JetStreamNames {
  const i = n++;
  return {
    journalStream: `J${i}`,
    journalSubject: `t${i}.journal`,
    uploadStream: `U${i}`,
    uploadPrefix: `t${i}.upload`,
    bucket: `store-${i}`,
  };
}

/** A coordinator's store on deployment `names`, with a cache of its own. */
async function coordinator(names: JetStreamNames): Promise<CoordinatorStore> {
  const store = createJetStreamStore({ servers: [nats.url], names, cacheDir: join(root, `cache-${n++}`) });
  stores.push(store);
  await store.open();
  return store;
}

/** A deployment with fed-1, clients alice and bob, round 1 open, and a coordinator on it. */
async function fresh(): Promise<{ names: JetStreamNames; store: CoordinatorStore }> {
  const names = deployment();
  const store = await coordinator(names);
  await store.append({ type: "federation-created", federation: federation() });
  await store.append({ type: "client-enrolled", client: client("alice") });
  await store.append({ type: "client-enrolled", client: client("bob") });
  await store.append({ type: "round-opened", round: round(1) });
  return { names, store };
}

const key = (clientId = "alice", updateId = "u1"): UploadKey => ({
  federationId: "fed-1",
  round: 1,
  clientId,
  updateId,
});

async function send(sink: UploadSink, bytes: Uint8Array, chunk: number, upTo = bytes.length): Promise<void> {
  for (let at = sink.offset; at < upTo; at += chunk)
    await sink.write(bytes.subarray(at, Math.min(upTo, at + chunk)));
}

/** A ≈ 2.6 MiB adapter (more than one 1 MiB chunk, many stream pieces). */
function bigUpdate(seed = 1): Uint8Array {
  const a = Float32Array.from({ length: 64 * 8192 }, (_, i) => Math.sin(i + seed));
  const b = Float32Array.from({ length: 4096 * 64 }, (_, i) => Math.cos(i * seed));
  return serializeSafetensors(
    [
      { name: "base_model.model.q.lora_A.weight", dtype: "F32", shape: [64, 8192], data: a },
      { name: "base_model.model.q.lora_B.weight", dtype: "F16", shape: [4096, 64], data: b },
    ],
    { format: "pt" },
  );
}

describe("JetStream store", { timeout: 60_000 }, () => {
  it("replays the journal stream into the state the appends built", async () => {
    const { names, store } = await fresh();
    const again = await coordinator(names);
    assert.equal(again.state().lastSeq, 4);
    assert.deepEqual(again.state(), store.state());
    assert.equal(again.state().federations.get("fed-1")?.clients.size, 2);
  });

  it("never interleaves two writers: the one behind reads what it missed and decides again", async () => {
    const { names, store: a } = await fresh();
    const b = await coordinator(names);
    await a.append({ type: "client-enrolled", client: client("carol") });
    // b has not seen carol: its append is refused by the sequence check, it catches up and writes after.
    const event = await b.append({ type: "client-enrolled", client: client("dave") });
    assert.equal(event.seq, 6);
    assert.deepEqual(
      [...b.state().federations.get("fed-1")!.clients.keys()],
      ["alice", "bob", "carol", "dave"],
    );
    // What no longer fits once caught up is refused, and nothing is written.
    await a.append({ type: "round-opened", round: round(2), at: 1 });
    await assert.rejects(b.append({ type: "round-opened", round: round(2), at: 2 }), JournalEventError);
    const c = await coordinator(names);
    assert.equal(c.state().lastSeq, 7);
  });

  it("resumes an upload on another coordinator from the durable offset, commits, accepts and reads it", async () => {
    const { names, store: a } = await fresh();
    const bytes = bigUpdate();
    const expected = { size: bytes.length, sha256: sha256(bytes) };
    const first = await a.beginUpload(key(), expected);
    await send(first, bytes, MiB, MiB + 1000);
    await first.close(); // the connection to coordinator a is cut
    const b = await coordinator(names);
    assert.deepEqual(await b.uploadStatus(key()), { state: "partial", bytes: MiB + 1000 });
    const resumed = await b.beginUpload(key(), expected);
    assert.equal(resumed.offset, MiB + 1000);
    await send(resumed, bytes, MiB);
    const committed = await resumed.commit();
    assert.equal(committed.sha256, expected.sha256);
    assert.equal((await b.uploadStatus(key())).state, "committed");
    await b.append({ type: "update-accepted", update: updateRecord(key(), bytes) });
    assert.deepEqual(await b.uploadStatus(key()), { state: "accepted", bytes: bytes.length });

    // Coordinator a reads it too (once it has caught up with b's event).
    const c = await coordinator(names);
    const reader = await c.openUpdate("fed-1", 1, "alice");
    try {
      assert.equal(reader.size, bytes.length);
      assert.ok(reader.path !== undefined, "a local verified copy that merge workers can read");
      const aBytes = await reader.read("base_model.model.q.lora_A.weight");
      const info = reader.tensors.get("base_model.model.q.lora_A.weight")!;
      assert.deepEqual(aBytes, bytes.subarray(info.offset, info.offset + info.byteLength));
    } finally {
      await reader.close();
    }
    // A second, different update for alice in round 1 is refused.
    const other = bigUpdate(2);
    await assert.rejects(
      c.beginUpload(key("alice", "u2"), { size: other.length, sha256: sha256(other) }),
      UpdateConflictError,
    );
  });

  it("refuses bytes that are not what was declared, and keeps nothing of them", async () => {
    const { store } = await fresh();
    const bytes = bigUpdate();
    const sink = await store.beginUpload(key("bob"), { size: bytes.length, sha256: "0".repeat(64) });
    await send(sink, bytes, MiB);
    await assert.rejects(
      sink.commit(),
      (err) => err instanceof StoreIntegrityError && err.reason === "sha256-mismatch",
    );
    assert.deepEqual(await store.uploadStatus(key("bob")), { state: "none", bytes: 0 });
    const over = await store.beginUpload(key("bob", "u9"), { size: 10, sha256: sha256(bytes) });
    await assert.rejects(
      over.write(bytes.subarray(0, 11)),
      (err) => err instanceof StoreIntegrityError && err.reason === "size-overrun",
    );
  });

  it("stops a closing round's uploads (round-closed) and keeps one partial per client and round", async () => {
    const { store } = await fresh();
    const bytes = bigUpdate();
    const expected = { size: bytes.length, sha256: sha256(bytes) };
    const old = await store.beginUpload(key("alice", "old"), expected);
    await send(old, bytes, MiB, 1000);
    const running = await store.beginUpload(key("alice", "new"), expected);
    await assert.rejects(old.write(bytes.subarray(1000, 2000)), UpdateConflictError);
    assert.deepEqual(await store.uploadStatus(key("alice", "old")), { state: "none", bytes: 0 });
    await send(running, bytes, MiB, 5000);
    assert.equal(await store.discardRoundUploads("fed-1", 1), 1);
    await assert.rejects(
      running.write(bytes.subarray(5000, 6000)),
      (err) => err instanceof UploadStoppedError && err.reason === "round-closed",
    );
    assert.deepEqual(await store.uploadStatus(key("alice", "new")), { state: "none", bytes: 0 });
  });

  it("stores merged adapters content-addressed, one per round, readable from every coordinator", async () => {
    const { names, store: a } = await fresh();
    const safetensors = bigUpdate(3);
    const configJson = JSON.stringify({ peft_type: "LORA", r: 64 });
    const stored = await a.putAdapter({ federationId: "fed-1", round: 1, configJson, safetensors });
    assert.equal(stored.contentHash, createHash("sha256").update(safetensors).digest("hex"));
    assert.deepEqual(
      await a.putAdapter({ federationId: "fed-1", round: 1, configJson, safetensors }),
      stored,
    );
    await assert.rejects(
      a.putAdapter({ federationId: "fed-1", round: 1, configJson, safetensors: bigUpdate(4) }),
      (err) => err instanceof StoreIntegrityError && err.reason === "round-result-conflict",
    );
    const b = await coordinator(names);
    const handle = await b.adapterForRound("fed-1", 1);
    assert.ok(handle !== undefined);
    assert.equal(handle.configJson, configJson);
    const reader = await handle.open();
    try {
      assert.deepEqual(await reader.read(0, safetensors.length), safetensors);
    } finally {
      await reader.close();
    }
    assert.equal(await b.getAdapter("f".repeat(64)), undefined);
    assert.equal(await b.adapterForRound("fed-1", 2), undefined);
  });

  it("at open removes what a crash left: an update committed and never journaled, a closed round's partials", async () => {
    const { names, store: a } = await fresh();
    const bytes = bigUpdate(5);
    const expected = { size: bytes.length, sha256: sha256(bytes) };
    const done = await a.beginUpload(key("alice"), expected);
    await send(done, bytes, MiB);
    await done.commit(); // … and the coordinator died before journaling it
    const partial = await a.beginUpload(key("bob"), expected);
    await send(partial, bytes, MiB, 1000);
    await partial.close();
    await a.append({
      type: "round-aborted",
      round: round(1, "fed-1", { state: "aborted", failure: "test" }),
    });
    const b = await coordinator(names);
    assert.deepEqual(await b.uploadStatus(key("alice")), { state: "none", bytes: 0 });
    assert.deepEqual(await b.uploadStatus(key("bob")), { state: "none", bytes: 0 });
  });
});
