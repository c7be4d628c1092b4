/**
 * A download whose client stops reading costs the coordinator one chunk: it
 * reads the next chunk from the store only once HTTP/2 has taken the previous
 * one, which a client that reads nothing never lets it do past its
 * flow-control window. Measured at the store port: the merged adapter's
 * handle counts the bytes the coordinator reads for the download.
 */
import assert from "node:assert/strict";
import { connect as connectHttp2 } from "node:http2";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { CHUNK_BYTES, FetchAdapterRequestSchema } from "@tributary/protocol";
import type { AdapterHandle, CoordinatorStore } from "../server/src/core/store.ts";
import { createFileStore } from "../server/src/store/file-store.ts";
import { waitFor } from "./helpers/expect.ts";
import { type Fixture, fetchRound, startFixture, submitUpdate } from "./helpers/federation.ts";
import { unreadDownload } from "./helpers/unread-download.ts";

const BIG = 16 * CHUNK_BYTES;
/** Bytes the coordinator read from the store for downloads of the inflated adapter. */
const reads = { bytes: 0, inflate: false };

/** `handle` as if its safetensors were `BIG` bytes (zeros), counting what is read. */
function inflated(handle: AdapterHandle): AdapterHandle {
  return {
    ...handle,
    size: BIG,
    async open() {
      return {
        size: BIG,
        async read(position: number, length: number) {
          const n = Math.max(0, Math.min(length, BIG - position));
          reads.bytes += n;
          return new Uint8Array(n);
        },
        async close() {},
      };
    },
  };
}

/** The file store, whose merged adapters are `BIG` bytes once `reads.inflate` is set. */
function countingStore(dataDir: string): CoordinatorStore {
  const store = createFileStore(dataDir);
  return {
    ...store,
    open: () => store.open(),
    state: () => store.state(),
    append: (event) => store.append(event),
    beginUpload: (key, expected) => store.beginUpload(key, expected),
    uploadStatus: (key) => store.uploadStatus(key),
    discardUpload: (key) => store.discardUpload(key),
    discardRoundUploads: (f, r) => store.discardRoundUploads(f, r),
    openUpdate: (f, r, c) => store.openUpdate(f, r, c),
    putAdapter: (input) => store.putAdapter(input),
    getAdapter: async (hash) => {
      const handle = await store.getAdapter(hash);
      return handle !== undefined && reads.inflate ? inflated(handle) : handle;
    },
    adapterForRound: (f, r) => store.adapterForRound(f, r),
    close: () => store.close(),
  };
}

describe("a download that is never read", { timeout: 60_000 }, () => {
  let fx: Fixture;
  before(async () => {
    fx = await startFixture({ clients: 2, rank: 4, store: countingStore });
    await fx.joinAll();
    for (const c of fx.clients) await submitUpdate(fx.client, fx.federationId, c);
    await waitFor("round 1's merged adapter", async () =>
      (await fetchRound(fx.client, fx.clients[0].token, fx.federationId).catch(() => undefined)) !== undefined
        ? true
        : undefined,
    );
  });
  after(async () => {
    await fx?.close();
  });

  it("makes the coordinator read one chunk of a 16-chunk adapter, and the rest once the client reads", async () => {
    reads.inflate = true;
    const session = connectHttp2(`http://${fx.service.endpoint.address}`);
    session.on("error", () => {});
    try {
      const req = create(FetchAdapterRequestSchema, {
        federationId: fx.federationId,
        selector: { case: "round", value: 1 },
      });
      const stream = unreadDownload(session, fx.clients[0].token, req);
      await waitFor("the download to start", () => stream.pending === false);
      await waitFor("the first chunk to be read", () => reads.bytes > 0);
      await new Promise((r) => setTimeout(r, 1_000));
      assert.equal(reads.bytes, CHUNK_BYTES, "one chunk read while the client reads nothing");

      // The client reads again: everything arrives, and the call ends OK.
      let received = 0;
      stream.on("data", (b: Buffer) => {
        received += b.length;
      });
      const trailers = new Promise<string | undefined>((resolve) =>
        stream.once("trailers", (t) => resolve(t["grpc-status"] as string | undefined)),
      );
      stream.resume();
      assert.equal(await trailers, "0");
      assert.equal(reads.bytes, BIG);
      assert.ok(received > BIG, `received ${received} bytes of gRPC messages for ${BIG} adapter bytes`);
    } finally {
      reads.inflate = false;
      session.destroy();
    }
  });
});
