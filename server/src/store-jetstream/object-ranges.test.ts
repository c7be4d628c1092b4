import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { after, before, test } from "node:test";
import { startNatsServer, type TestNatsServer } from "../../../test/helpers/nats-server.ts";
import { StoreCorruptError } from "../core/store-errors.ts";
import { createKeyedMutex } from "../store/keyed-mutex.ts";
import { tempDir } from "../store/testing/fixtures.ts";
import { createObjectRanges } from "./object-ranges.ts";
import { type JetStreamHandles, openJetStream } from "./setup.ts";

const KiB = 1024;
let nats: TestNatsServer;
let h: JetStreamHandles;
let root = "";
let remove: () => Promise<void> = async () => undefined;

before(async () => {
  nats = await startNatsServer({ jetstream: true });
  ({ dir: root, remove } = await tempDir("object-ranges-"));
  h = await openJetStream(
    {
      journalStream: "RJ",
      journalSubject: "r.journal",
      uploadStream: "RU",
      uploadPrefix: "r.upload",
      bucket: "ranges",
    },
    { servers: [nats.url], replicas: 1 },
  );
});
after(async () => {
  await h?.close();
  await nats?.close();
  await remove();
});

const pattern = (size: number, seed: number) =>
  Uint8Array.from({ length: size }, (_, i) => (i * 31 + seed) & 0xff);

test("a range of an object is fetched as the chunks that cover it, at its offset in a sparse copy", async () => {
  const a = pattern(640 * KiB + 100, 1);
  const b = pattern(512 * KiB, 2);
  // Put at once, so the two objects' chunks interleave in the bucket's stream.
  await Promise.all([h.objects.putBlob({ name: "a" }, a), h.objects.putBlob({ name: "b" }, b)]);
  const ranges = createObjectRanges(h, "ranges", root, createKeyedMutex());
  const within = { offset: 130 * KiB, length: 10 * KiB }; // inside chunk 1 (128 KiB chunks)
  const path = await ranges.fill("a", a.length, ["sparse", "a"], [within]);
  assert.equal(ranges.fetchedBytes(), 128 * KiB, "one chunk");
  const copy = new Uint8Array(await readFile(path));
  assert.equal(copy.length, a.length, "the copy has the object's size");
  assert.deepEqual(
    copy.subarray(within.offset, within.offset + within.length),
    a.subarray(within.offset, within.offset + within.length),
  );
  // Across a boundary, and the short last chunk: only what is not there yet.
  const across = { offset: 250 * KiB, length: 20 * KiB };
  const tail = { offset: a.length - 50, length: 50 };
  await ranges.fill("a", a.length, ["sparse", "a"], [across, tail, within]);
  assert.equal(ranges.fetchedBytes(), 128 * KiB + 128 * KiB + 100, "chunk 2 and the 100-byte last chunk");
  const again = new Uint8Array(await readFile(path));
  for (const r of [within, across, tail]) {
    assert.deepEqual(
      again.subarray(r.offset, r.offset + r.length),
      a.subarray(r.offset, r.offset + r.length),
    );
  }
});

test("an object whose size is not what the task says is refused", async () => {
  await h.objects.putBlob({ name: "c" }, pattern(1000, 3));
  const ranges = createObjectRanges(h, "ranges", root, createKeyedMutex());
  await assert.rejects(
    ranges.fill("c", 999, ["sparse", "c"], [{ offset: 0, length: 10 }]),
    (err: unknown) => err instanceof StoreCorruptError && /holds 1000 bytes, expected 999/.test(err.message),
  );
  await assert.rejects(
    ranges.fill("missing", 10, ["sparse", "missing"], [{ offset: 0, length: 10 }]),
    (err: unknown) => err instanceof StoreCorruptError && /missing/.test(err.message),
  );
});
