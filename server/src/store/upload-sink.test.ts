import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { type FileHandle, open, readFile, rename } from "node:fs/promises";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type { UploadKey } from "../core/store.ts";
import { tempDir } from "./testing/fixtures.ts";
import { createUploadSink, FLUSH_STEP } from "./upload-sink.ts";

let root = "";
let remove: () => Promise<void> = async () => undefined;
before(async () => {
  ({ dir: root, remove } = await tempDir());
});
after(() => remove());

const key: UploadKey = { federationId: "fed-1", round: 1, clientId: "alice", updateId: "u1" };

/** `handle` with its `datasync` calls counted, or failed with `failure`. */
function watched(handle: FileHandle, failure?: Error): { handle: FileHandle; datasyncs: () => number } {
  let datasyncs = 0;
  const h = {
    fd: handle.fd,
    write: handle.write.bind(handle),
    read: handle.read.bind(handle),
    sync: handle.sync.bind(handle),
    stat: handle.stat.bind(handle),
    close: handle.close.bind(handle),
    datasync: async () => {
      datasyncs++;
      if (failure !== undefined) throw failure;
      await handle.datasync();
    },
  };
  return { handle: h as unknown as FileHandle, datasyncs: () => datasyncs };
}

/** A sink over a fresh partial file for `bytes`, its accepted file next to it. */
async function sinkFor(name: string, bytes: Uint8Array, failure?: Error) {
  const path = join(root, `${name}.partial`);
  const file = watched(await open(path, "w+"), failure);
  const sink = createUploadSink({
    key,
    expected: { size: bytes.length, sha256: createHash("sha256").update(bytes).digest("hex") },
    path,
    handle: file.handle,
    offset: 0,
    hooks: {
      async accept(from) {
        const to = join(root, `${name}.accepted`);
        await rename(from, to);
        return { location: to, size: bytes.length, sha256: createHash("sha256").update(bytes).digest("hex") };
      },
      release: () => undefined,
    },
  });
  return { sink, path, datasyncs: file.datasyncs };
}

test("a sink flushes in the background every FLUSH_STEP bytes, and its commit stores every byte", async () => {
  const bytes = randomBytes(2 * FLUSH_STEP + 12345);
  const { sink, datasyncs } = await sinkFor("flushed", bytes);
  assert.equal(sink.path, join(root, "flushed.partial"));
  for (let at = 0; at < bytes.length; at += 1 << 20) await sink.write(bytes.subarray(at, at + (1 << 20)));
  // One flush at a time: the second starts once FLUSH_STEP more bytes follow the first's end.
  assert.ok(datasyncs() >= 1 && datasyncs() <= 2, `${datasyncs()} background flushes`);
  const stored = await sink.commit();
  assert.deepEqual(await readFile(stored.location), bytes);
});

test("a sink writing less than FLUSH_STEP flushes only at its commit", async () => {
  const bytes = randomBytes(FLUSH_STEP - 1);
  const { sink, datasyncs } = await sinkFor("small", bytes);
  await sink.write(bytes);
  await sink.commit();
  assert.equal(datasyncs(), 0);
});

test("a background flush that fails fails the commit, keeping the partial file", async () => {
  const bytes = randomBytes(FLUSH_STEP + 1);
  const eio = Object.assign(new Error("EIO: i/o error, fdatasync"), { code: "EIO" });
  const { sink, path, datasyncs } = await sinkFor("failed", bytes, eio);
  await sink.write(bytes);
  assert.equal(datasyncs(), 1);
  await assert.rejects(sink.commit(), /EIO/);
  assert.equal((await readFile(path)).length, bytes.length);
  await sink.close().catch(() => undefined);
});
