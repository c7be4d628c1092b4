import assert from "node:assert/strict";
import { test } from "node:test";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { create } from "@bufbuild/protobuf";
import { type SubmitUpdateRequest, SubmitUpdateRequestSchema } from "@tributary/protocol";
import { InvalidUpdateError, QuotaExceededError, UploadDeferredError } from "../../coordinator/errors.ts";
import { watchRate } from "./upload-fairness.ts";
import { splitUpload } from "./upload-messages.ts";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

const header = (): SubmitUpdateRequest =>
  create(SubmitUpdateRequestSchema, {
    payload: {
      case: "header",
      value: {
        federationId: "f",
        round: 1,
        updateId: "u1",
        totalSize: 10n,
        contentHash: "ab".repeat(32),
        adapterConfigJson: "{}",
      },
    },
  });
const chunk = (value: Uint8Array): SubmitUpdateRequest =>
  create(SubmitUpdateRequestSchema, { payload: { case: "chunk", value } });

async function* messages(chunks: number, bytes: number): AsyncGenerator<SubmitUpdateRequest> {
  yield header();
  for (let i = 0; i < chunks; i++) yield chunk(new Uint8Array(bytes).fill(i));
}

test("splitUpload holds no chunk intake has moved past, while the fairness watch lives on", async () => {
  // contended() is false: the watch ticks for the whole upload and never fires.
  const rate = watchRate(
    { minBytesPerSec: 1, windowMs: 200, maxWaitMs: 1000 },
    () => false,
    () => new Error(),
  );
  try {
    const { chunks } = await splitUpload(messages(40, 64 * 1024), "node-1", 60_000, rate);
    const seen: WeakRef<Uint8Array>[] = [];
    let bytes = 0;
    for await (const c of chunks) {
      seen.push(new WeakRef(c));
      bytes += c.byteLength;
    }
    assert.equal(bytes, 40 * 64 * 1024);
    // WeakRefs made in a job are kept until it ends: collect from a later one.
    await new Promise((r) => setImmediate(r));
    gc();
    await new Promise((r) => setImmediate(r));
    const alive = seen.filter((w) => w.deref() !== undefined).length;
    assert.ok(alive <= 1, `${alive} of 40 chunks are still reachable after the upload moved past them`);
  } finally {
    rate.stop();
  }
});

test("splitUpload reads the header, then yields the chunks' bytes in order and counts them", async () => {
  let counted = 0;
  const rate = watchRate(
    { minBytesPerSec: 0, windowMs: 1000, maxWaitMs: 1000 },
    () => false,
    () => new Error(),
  );
  const received = rate.received;
  rate.received = (n) => {
    counted += n;
    received(n);
  };
  const { header: h, chunks } = await splitUpload(messages(3, 4), "node-1", 60_000, rate);
  assert.equal(h.clientId, "node-1");
  assert.equal(h.updateId, "u1");
  assert.equal(h.totalSize, 10);
  const got: number[] = [];
  for await (const c of chunks) got.push(c[0]);
  assert.deepEqual(got, [0, 1, 2]);
  assert.equal(counted, 12);
});

test("splitUpload refuses an upload that does not start with its header, or sends a header later", async () => {
  async function* noHeader(): AsyncGenerator<SubmitUpdateRequest> {
    yield chunk(new Uint8Array(4));
  }
  await assert.rejects(splitUpload(noHeader(), "node-1", 60_000), (err: unknown) => {
    assert.ok(err instanceof InvalidUpdateError);
    assert.equal(err.field, "header");
    return true;
  });
  async function* twoHeaders(): AsyncGenerator<SubmitUpdateRequest> {
    yield header();
    yield header();
  }
  const { chunks } = await splitUpload(twoHeaders(), "node-1", 60_000);
  await assert.rejects(
    (async () => {
      for await (const _ of chunks) {
        // the second header is refused
      }
    })(),
    (err: unknown) => err instanceof InvalidUpdateError && err.field === "chunk",
  );
});

test("splitUpload ends an upload idle for idleMs, and one the fairness watch finds too slow", async () => {
  async function* stalls(): AsyncGenerator<SubmitUpdateRequest> {
    yield header();
    await new Promise(() => {}); // sends nothing more
  }
  const idle = await splitUpload(stalls(), "node-1", 50);
  await assert.rejects(
    idle.chunks[Symbol.asyncIterator]().next(),
    (err: unknown) => err instanceof QuotaExceededError && /sent nothing for 0.05 s/.test(err.message),
  );
  const slow = watchRate(
    { minBytesPerSec: 1_000_000, windowMs: 200, maxWaitMs: 1000 },
    () => true,
    (got) => new UploadDeferredError("node-1", "min_upload_rate", 1_000_000, `it sent ${got} bytes`),
  );
  try {
    const { chunks } = await splitUpload(stalls(), "node-1", 60_000, slow);
    await assert.rejects(
      chunks[Symbol.asyncIterator]().next(),
      (err: unknown) => err instanceof UploadDeferredError && /it sent 0 bytes/.test(err.message),
    );
    // A wait that starts after the watch fired ends at once.
    let late: Error | undefined;
    slow.whenSlow((err) => {
      late = err;
    });
    assert.ok(late instanceof UploadDeferredError);
  } finally {
    slow.stop();
  }
});
