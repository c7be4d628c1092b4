import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type { UploadKey, UploadSink } from "../core/store.ts";
import {
  StorageFullError,
  StoreArgumentError,
  StoreIntegrityError,
  UpdateConflictError,
  UploadStoppedError,
} from "../core/store-errors.ts";
import { parseSafetensors, serializeSafetensors } from "../peft/index.ts";
import { createFileStore, type FileStore } from "./file-store.ts";
import { client, federation, round, sha256, tempDir, updateBytes, updateRecord } from "./testing/fixtures.ts";

let root = "";
let remove: () => Promise<void> = async () => undefined;
let n = 0;
before(async () => {
  ({ dir: root, remove } = await tempDir());
});
after(() => remove());

const MiB = 1 << 20;

/** An open store with fed-1, clients alice and bob, round 1 open. */
async function fresh(dir = join(root, `d${n++}`)): Promise<FileStore> {
  const store = createFileStore(dir);
  const state = await store.open();
  if (state.lastSeq === 0) {
    await store.append({ type: "federation-created", federation: federation() });
    await store.append({ type: "client-enrolled", client: client("alice") });
    await store.append({ type: "client-enrolled", client: client("bob") });
    await store.append({ type: "round-opened", round: round(1) });
  }
  return store;
}

async function reopen(store: FileStore): Promise<FileStore> {
  await store.close();
  return fresh(store.dataDir);
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

/** A ≈ 2.6 MiB adapter: A is F32 [64, 8192], B is F16 [4096, 64]. */
function bigUpdate(): Uint8Array {
  const a = Float32Array.from({ length: 64 * 8192 }, (_, i) => Math.sin(i));
  const b = Float32Array.from({ length: 4096 * 64 }, (_, i) => Math.cos(i));
  return serializeSafetensors(
    [
      { name: "base_model.model.q.lora_A.weight", dtype: "F32", shape: [64, 8192], data: a },
      { name: "base_model.model.q.lora_B.weight", dtype: "F16", shape: [4096, 64], data: b },
    ],
    { format: "pt" },
  );
}

test("an upload in 1 MiB chunks commits, is accepted, and reads back tensor by tensor", async () => {
  const store = await fresh();
  const bytes = bigUpdate();
  const sink = await store.beginUpload(key(), { size: bytes.length, sha256: sha256(bytes) });
  assert.equal(sink.offset, 0);
  await send(sink, bytes, MiB);
  const committed = await sink.commit();
  assert.deepEqual(committed, {
    location: join(store.dataDir, "updates", "fed-1", "1", "alice.safetensors"),
    size: bytes.length,
    sha256: sha256(bytes),
  });
  assert.deepEqual(await store.uploadStatus(key()), { state: "committed", bytes: bytes.length });
  await store.append({ type: "update-accepted", update: updateRecord(key(), bytes) });
  assert.deepEqual(await store.uploadStatus(key()), { state: "accepted", bytes: bytes.length });
  assert.deepEqual(await readdir(join(store.dataDir, "uploads", "fed-1", "1")), []);

  const reader = await store.openUpdate("fed-1", 1, "alice");
  const original = parseSafetensors(bytes, "original");
  assert.equal(reader.size, bytes.length);
  assert.deepEqual(reader.metadata, { format: "pt" });
  assert.deepEqual([...reader.tensors.keys()], [...original.tensors.keys()]);
  for (const [name, t] of original.tensors) {
    const info = reader.tensors.get(name)!;
    assert.deepEqual([info.dtype, [...info.shape], info.byteLength], [t.dtype, t.shape, t.bytes.length]);
    const got = await reader.read(name);
    // Exactly the tensor's range, in its own (aligned) buffer: never the whole file.
    assert.equal(got.buffer.byteLength, t.bytes.length);
    assert.ok(Buffer.from(got).equals(Buffer.from(t.bytes)), name);
  }
  await assert.rejects(reader.read("nope"), RangeError);
  await reader.close();
  await store.close();
});

test("a sha256 mismatch is refused, the partial deleted and nothing accepted", async () => {
  const store = await fresh();
  const bytes = updateBytes(1);
  const sink = await store.beginUpload(key(), { size: bytes.length, sha256: sha256(updateBytes(2)) });
  await send(sink, bytes, 100);
  await assert.rejects(sink.commit(), (err: unknown) => {
    assert.ok(err instanceof StoreIntegrityError);
    assert.equal(err.reason, "sha256-mismatch");
    assert.match(
      err.message,
      /^federation "fed-1" round 1 client "alice" update "u1": sha256 of the received/,
    );
    return true;
  });
  assert.deepEqual(await store.uploadStatus(key()), { state: "none", bytes: 0 });
  await assert.rejects(store.openUpdate("fed-1", 1, "alice"), StoreArgumentError);
  await assert.rejects(
    store.append({ type: "update-accepted", update: updateRecord(key(), bytes) }),
    /not-committed|no committed/,
  );
  // The client resends, correctly this time.
  const again = await store.beginUpload(key(), { size: bytes.length, sha256: sha256(bytes) });
  assert.equal(again.offset, 0);
  await send(again, bytes, 1000);
  await again.commit();
  await store.close();
});

test("writes past the declared size are refused without writing; an early commit keeps the bytes", async () => {
  const store = await fresh();
  const bytes = updateBytes(3);
  const sink = await store.beginUpload(key(), { size: bytes.length, sha256: sha256(bytes) });
  await sink.write(bytes.subarray(0, 100));
  await assert.rejects(
    sink.write(new Uint8Array(bytes.length)),
    (err: unknown) => err instanceof StoreIntegrityError && err.reason === "size-overrun",
  );
  assert.equal(sink.offset, 100);
  await assert.rejects(
    sink.commit(),
    (err: unknown) => err instanceof StoreIntegrityError && err.reason === "incomplete",
  );
  await send(sink, bytes, 4096);
  await sink.commit();
  await store.close();
});

test("a dropped upload resumes from its durable bytes, also after a restart", async () => {
  let store = await fresh();
  const bytes = bigUpdate();
  const expected = { size: bytes.length, sha256: sha256(bytes) };
  const half = Math.floor(bytes.length / 2);
  const first = await store.beginUpload(key("bob", "b1"), expected);
  await send(first, bytes, MiB, half);
  await first.close(); // the connection dropped
  assert.deepEqual(await store.uploadStatus(key("bob", "b1")), { state: "partial", bytes: half });
  store = await reopen(store);
  const second = await store.beginUpload(key("bob", "b1"), expected);
  assert.equal(second.offset, half);
  await send(second, bytes, MiB);
  assert.equal((await second.commit()).sha256, expected.sha256);
  await store.append({ type: "update-accepted", update: updateRecord(key("bob", "b1"), bytes) });
  const reader = await store.openUpdate("fed-1", 1, "bob");
  assert.equal(reader.size, bytes.length);
  await store.close();
});

test("a new sink for the same key supersedes the old one", async () => {
  const store = await fresh();
  const bytes = updateBytes(4);
  const expected = { size: bytes.length, sha256: sha256(bytes) };
  const old = await store.beginUpload(key(), expected);
  await old.write(bytes.subarray(0, 64));
  const fresh2 = await store.beginUpload(key(), expected);
  assert.equal(fresh2.offset, 64);
  await assert.rejects(old.write(bytes.subarray(64, 128)), UpdateConflictError);
  await send(fresh2, bytes, 1000);
  await fresh2.commit();
  await store.close();
});

test("one update per client and round: conflicts, idempotent resends, discards", async () => {
  let store = await fresh();
  const bytes = updateBytes(5);
  const expected = { size: bytes.length, sha256: sha256(bytes) };
  const sink = await store.beginUpload(key(), expected);
  await send(sink, bytes, 1000);
  await sink.commit();

  // Another update of the same client cannot be committed while this one awaits its event.
  const other = updateBytes(6);
  const otherSink = await store.beginUpload(key("alice", "u2"), {
    size: other.length,
    sha256: sha256(other),
  });
  await send(otherSink, other, 1000);
  await assert.rejects(otherSink.commit(), (err: unknown) => {
    assert.ok(err instanceof UpdateConflictError);
    assert.equal(err.existingUpdateId, "u1");
    return true;
  });

  await store.append({ type: "update-accepted", update: updateRecord(key(), bytes) });
  await assert.rejects(store.beginUpload(key("alice", "u2"), expected), /update "u1" is already accepted/);
  await assert.rejects(store.uploadStatus(key("alice", "u2")), UpdateConflictError);
  await assert.rejects(store.beginUpload(key(), { ...expected, sha256: sha256(other) }), UpdateConflictError);
  // A resend of the accepted update is complete at once.
  const resend = await store.beginUpload(key(), expected);
  assert.equal(resend.offset, bytes.length);
  assert.equal((await resend.commit()).sha256, expected.sha256);
  assert.equal(await store.discardUpload(key()), false, "accepted updates are never discarded");

  // A committed update whose event was never journaled disappears on restart...
  const bobBytes = updateBytes(7);
  const bobSink = await store.beginUpload(key("bob", "b1"), {
    size: bobBytes.length,
    sha256: sha256(bobBytes),
  });
  await send(bobSink, bobBytes, 1000);
  await bobSink.commit();
  store = await reopen(store);
  assert.equal(store.recovery?.unjournaledUpdates, 1);
  assert.deepEqual(await store.uploadStatus(key("bob", "b1")), { state: "none", bytes: 0 });
  await assert.rejects(store.openUpdate("fed-1", 1, "bob"), StoreArgumentError);
  assert.equal((await store.openUpdate("fed-1", 1, "alice")).size, bytes.length);

  // ... and with discardUpload (an update the coordinator rejected).
  const again = await store.beginUpload(key("bob", "b1"), {
    size: bobBytes.length,
    sha256: sha256(bobBytes),
  });
  await send(again, bobBytes, 1000);
  await again.commit();
  assert.equal(await store.discardUpload(key("bob", "b1")), true);
  assert.deepEqual(await readdir(join(store.dataDir, "updates", "fed-1", "1")), ["alice.safetensors"]);
  await store.close();
});

test("partial uploads of rounds that are no longer open are removed at open", async () => {
  let store = await fresh();
  const bytes = updateBytes(8);
  const sink = await store.beginUpload(key("bob", "b1"), { size: bytes.length, sha256: sha256(bytes) });
  await send(sink, bytes, 100, 300);
  await sink.close();
  store = await reopen(store);
  assert.equal(store.recovery?.staleUploadRounds, 0);
  assert.deepEqual(await store.uploadStatus(key("bob", "b1")), { state: "partial", bytes: 300 });
  await store.append({ type: "round-failed", round: round(1, "fed-1", { state: "failed" }) });
  store = await reopen(store);
  assert.equal(store.recovery?.staleUploadRounds, 1);
  assert.deepEqual(await store.uploadStatus(key("bob", "b1")), { state: "none", bytes: 0 });
  await store.close();
});

test("abort deletes the received bytes", async () => {
  const store = await fresh();
  const bytes = updateBytes(9);
  const sink = await store.beginUpload(key(), { size: bytes.length, sha256: sha256(bytes) });
  await sink.write(bytes.subarray(0, 500));
  await sink.abort();
  assert.deepEqual(await store.uploadStatus(key()), { state: "none", bytes: 0 });
  await assert.rejects(sink.write(bytes.subarray(500, 600)), /already committed, closed or aborted/);
  await store.close();
});

test("discardRoundUploads stops a round's running uploads and deletes their bytes, keeping committed ones", async () => {
  const store = await fresh();
  const bytes = bigUpdate();
  const done = await store.beginUpload(key("bob", "b1"), { size: bytes.length, sha256: sha256(bytes) });
  await send(done, bytes, MiB);
  await done.commit();
  const running = await store.beginUpload(key(), { size: bytes.length, sha256: sha256(bytes) });
  await send(running, bytes, MiB, MiB);
  assert.equal((await store.uploadStatus(key())).state, "partial");
  assert.equal(await store.discardRoundUploads("fed-1", 1), 1);
  await assert.rejects(
    running.write(bytes.subarray(MiB, 2 * MiB)),
    (err) => err instanceof UploadStoppedError && err.reason === "round-closed",
  );
  assert.deepEqual(await store.uploadStatus(key()), { state: "none", bytes: 0 });
  assert.equal((await store.uploadStatus(key("bob", "b1"))).state, "committed");
  await assert.rejects(store.discardRoundUploads("../etc", 1), StoreArgumentError);
  await store.close();
});

test("one partial upload per client and round: a new update id drops the client's other partials", async () => {
  const store = await fresh();
  const sizes = [4000, 5000, 6000];
  const partials = [];
  for (const [i, size] of sizes.entries()) {
    const bytes = updateBytes(10 + i);
    const sink = await store.beginUpload(key("alice", `p${i}`), {
      size: bytes.length,
      sha256: sha256(bytes),
    });
    await send(sink, bytes, 1000, Math.min(size, bytes.length - 1));
    partials.push(sink);
  }
  const bob = updateBytes(20);
  const bobSink = await store.beginUpload(key("bob", "b1"), { size: bob.length, sha256: sha256(bob) });
  await send(bobSink, bob, 1000, bob.length - 1);
  const dir = (client: string) => join(store.dataDir, "uploads", "fed-1", "1", client);
  assert.deepEqual(await readdir(dir("alice")), ["p2.partial"], "only alice's newest partial is kept");
  assert.deepEqual(await readdir(dir("bob")), ["b1.partial"], "other clients are not touched");
  assert.equal((await store.uploadStatus(key("alice", "p0"))).state, "none");
  await assert.rejects(
    partials[0].write(new Uint8Array(1)),
    UpdateConflictError,
    "a dropped partial's sink is stopped",
  );
  await Promise.all([partials[2].close(), bobSink.close()]);
  await store.close();
});

test("admission counts what the uploads under way still need: a later one that cannot fit is refused before a byte is stored", async () => {
  const dir = join(root, `d${n++}`);
  const bytes = updateBytes(5);
  // A disk of 3.5 uploads' room, whose free space shrinks with what is written.
  let written = 0;
  const store = createFileStore(dir, { freeBytes: async () => Math.floor(3.5 * bytes.length) - written });
  await store.open();
  await store.append({ type: "federation-created", federation: federation() });
  const clients = ["c1", "c2", "c3", "c4"];
  for (const c of clients) await store.append({ type: "client-enrolled", client: client(c) });
  await store.append({ type: "round-opened", round: round(1) });
  const expected = { size: bytes.length, sha256: sha256(bytes) };
  const sinks: UploadSink[] = [];
  for (const c of clients.slice(0, 3)) {
    const sink = await store.beginUpload(key(c, `u-${c}`), expected);
    await sink.write(bytes.subarray(0, 10));
    written += 10;
    sinks.push(sink);
  }
  // Three are under way: the fourth would leave one of them unable to finish.
  const refused = await store.beginUpload(key("c4", "u-c4"), expected).then(
    () => assert.fail("admitted"),
    (err: unknown) => err,
  );
  assert.ok(refused instanceof StorageFullError, String(refused));
  assert.match((refused as Error).message, /needs \d+ more bytes/);
  assert.deepEqual(
    await store.uploadStatus(key("c4", "u-c4")),
    { state: "none", bytes: 0 },
    "nothing of it was stored",
  );
  // Every admitted upload finishes; then the fourth fits.
  for (const sink of sinks) {
    await sink.write(bytes.subarray(10));
    written += bytes.length - 10;
    await sink.commit();
  }
  written = 0; // the rounds' bytes moved off, say
  const late = await store.beginUpload(key("c4", "u-c4"), expected);
  await late.write(bytes);
  await late.commit();
  await store.close();
});

test("two uploads of one client begun at once leave one partial for the round, the later one", async () => {
  const store = await fresh();
  const bytes = updateBytes(6);
  const expected = { size: bytes.length, sha256: sha256(bytes) };
  const [first, second] = await Promise.all([
    store.beginUpload(key("alice", "u-first"), expected),
    store.beginUpload(key("alice", "u-second"), expected),
  ]);
  await second.write(bytes.subarray(0, 16));
  const dir = join(store.dataDir, "uploads", "fed-1", "1", "alice");
  const partials = (await readdir(dir)).filter((f) => f.endsWith(".partial"));
  assert.equal(partials.length, 1, partials.join(", "));
  await assert.rejects(
    first.write(bytes.subarray(0, 16)),
    UpdateConflictError,
    "the earlier one was superseded",
  );
  await store.close();
});
