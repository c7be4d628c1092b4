/**
 * Slow uploaders cannot starve the others: an upload holding one of the
 * coordinator's upload turns while others wait must keep a minimum rate, or
 * it is deferred (RESOURCE_EXHAUSTED UPLOAD_DEFERRED, its bytes kept for a
 * resume); and no upload waits for a turn beyond a bound. Small limits and
 * windows keep the test quick.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { GetUploadStatusRequestSchema, type GetUploadStatusResponse } from "@tributary/protocol";
import { expectError } from "./helpers/expect.ts";
import { type Fixture, startFixture, type TestClient } from "./helpers/federation.ts";
import { bearer, call, upload } from "./helpers/grpc-calls.ts";
import { trickle } from "./helpers/trickle.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `c`'s adapter, one byte every `everyMs`. */
const slowly = (fx: Fixture, c: TestClient, everyMs: number) =>
  trickle(fx.client, { ...c, clientId: c.id, federationId: fx.federationId }, everyMs);

const honest = (fx: Fixture, c: TestClient, updateId: string) =>
  upload(fx.client, c.token, {
    federationId: fx.federationId,
    round: 1,
    clientId: c.id,
    updateId,
    configJson: c.configJson,
    bytes: c.bytes,
  });

const receivedBytes = async (fx: Fixture, c: TestClient, updateId: string) =>
  Number(
    (
      (await call(
        fx.client.getUploadStatus,
        fx.client,
        create(GetUploadStatusRequestSchema, { federationId: fx.federationId, round: 1, updateId }),
        bearer(c.token),
      )) as GetUploadStatusResponse
    ).receivedBytes,
  );

describe("fair upload turns", { timeout: 60_000 }, () => {
  describe("a minimum rate while others wait", () => {
    let fx: Fixture;
    before(async () => {
      fx = await startFixture({
        clients: 3,
        maxActiveUploads: 2,
        uploadIdleMs: 2_000,
        uploadFairness: { minBytesPerSec: 16 * 1024, windowMs: 1_000, maxWaitMs: 60_000 },
      });
      await fx.joinAll();
    });
    after(async () => {
      await fx?.close();
    });

    it("defers a trickling upload while an honest one waits, which is then served at once; not while none waits", async () => {
      const [s1, s2, h] = fx.clients;
      const slow = [slowly(fx, s1, 200), slowly(fx, s2, 200)];
      try {
        // Both turns are taken by tricklers that are never idle for the idle timeout.
        while ((await receivedBytes(fx, s1, `slow-${s1.id}`)) === 0) await sleep(50);
        while ((await receivedBytes(fx, s2, `slow-${s2.id}`)) === 0) await sleep(50);
        const t0 = performance.now();
        const ack = await honest(fx, h, "honest");
        const waited = performance.now() - t0;
        assert.equal(ack.accepted, true);
        assert.ok(waited < 5_000, `the honest upload waited ${waited} ms`);
        // One trickler gave its turn up; the other, with nobody waiting any more, goes on.
        const deferred = slow.findIndex((x) => x.settled());
        assert.ok(deferred >= 0, "no trickler was deferred");
        const meta = await expectError(
          slow[deferred].done,
          8,
          "UPLOAD_DEFERRED",
          /deferred: it sent \d+ bytes in the last 1 s while other uploads waited/,
        );
        assert.equal(meta.limit, "min_upload_rate");
        const c = fx.clients[deferred];
        assert.ok((await receivedBytes(fx, c, `slow-${c.id}`)) > 0, "what arrived is kept for a resume");
        const other = slow[1 - deferred];
        const o = fx.clients[1 - deferred];
        const before = await receivedBytes(fx, o, `slow-${o.id}`);
        await sleep(1_500);
        assert.equal(other.settled(), false, "a slow upload is deferred only while another waits");
        assert.ok((await receivedBytes(fx, o, `slow-${o.id}`)) > before);
      } finally {
        for (const x of slow) x.stop();
      }
    });
  });

  describe("a bound on waiting for a turn", () => {
    let fx: Fixture;
    before(async () => {
      fx = await startFixture({
        clients: 2,
        maxActiveUploads: 1,
        uploadIdleMs: 5_000,
        uploadFairness: { minBytesPerSec: 0, windowMs: 1_000, maxWaitMs: 800 },
      });
      await fx.joinAll();
    });
    after(async () => {
      await fx?.close();
    });

    it("answers an upload that waited past the bound, naming the limit, instead of silence", async () => {
      const [s, h] = fx.clients;
      const slow = slowly(fx, s, 200);
      try {
        while ((await receivedBytes(fx, s, `slow-${s.id}`)) === 0) await sleep(50);
        const t0 = performance.now();
        const meta = await expectError(
          honest(fx, h, "waits"),
          8,
          "UPLOAD_DEFERRED",
          /waited 0\.8 s for one of the 1 upload turns/,
        );
        assert.equal(meta.limit, "max_upload_wait");
        const waited = performance.now() - t0;
        assert.ok(waited >= 700 && waited < 3_000, `answered after ${waited} ms`);
      } finally {
        slow.stop();
      }
    });
  });
});
