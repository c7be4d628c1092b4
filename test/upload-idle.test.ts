/**
 * An upload stream that stops sending is ended after the coordinator's idle
 * timeout with RESOURCE_EXHAUSTED (QUOTA_EXCEEDED, `upload_idle_seconds`),
 * and what arrived stays stored: the client resumes from it.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import {
  GetUploadStatusRequestSchema,
  type GetUploadStatusResponse,
  SubmitUpdateRequestSchema,
  type SubmitUpdateResponse,
  sha256Hex,
} from "@tributary/protocol";
import { expectError } from "./helpers/expect.ts";
import { type Fixture, startFixture } from "./helpers/federation.ts";
import { bearer, call, upload } from "./helpers/grpc-calls.ts";

describe("idle upload streams", { timeout: 60_000 }, () => {
  let fx: Fixture;
  before(async () => {
    fx = await startFixture({ clients: 2, uploadIdleMs: 300 });
    await fx.joinAll();
  });
  after(async () => {
    await fx?.close();
  });

  it("ends an upload that sends nothing for the idle timeout, keeping its bytes for a resume", async () => {
    const [c] = fx.clients;
    const sent = 1000;
    const header = {
      federationId: fx.federationId,
      round: 1,
      clientId: c.id,
      updateId: "idle",
      sampleCount: 10n,
      contentHash: sha256Hex(c.bytes),
      totalSize: BigInt(c.bytes.length),
      adapterConfigJson: c.configJson,
      resumeOffset: 0n,
    };
    const stalled = new Promise<SubmitUpdateResponse>((resolve, reject) => {
      const stream = fx.client.submitUpdate(bearer(c.token), (err, res) =>
        err ? reject(err) : resolve(res!),
      );
      stream.write(create(SubmitUpdateRequestSchema, { payload: { case: "header", value: header } }));
      stream.write(
        create(SubmitUpdateRequestSchema, { payload: { case: "chunk", value: c.bytes.subarray(0, sent) } }),
      );
      // ...and nothing more, without ending the stream.
    });
    const meta = await expectError(
      stalled,
      grpc.status.RESOURCE_EXHAUSTED,
      "QUOTA_EXCEEDED",
      /the upload sent nothing for 0\.3 s \(limit upload_idle_seconds = 0\.3\)/,
    );
    assert.deepEqual(meta, { quota: "upload_idle_seconds", limit: "0.3" });
    const status = (await call(
      fx.client.getUploadStatus,
      fx.client,
      create(GetUploadStatusRequestSchema, { federationId: fx.federationId, round: 1, updateId: "idle" }),
      bearer(c.token),
    )) as GetUploadStatusResponse;
    assert.equal(Number(status.receivedBytes), sent);
    const ack = await upload(fx.client, c.token, {
      federationId: fx.federationId,
      round: 1,
      clientId: c.id,
      updateId: "idle",
      samples: 10,
      configJson: c.configJson,
      bytes: c.bytes,
      resumeOffset: sent,
    });
    assert.equal(ack.accepted, true);
    assert.equal(ack.contentHash, sha256Hex(c.bytes));
  });
});
