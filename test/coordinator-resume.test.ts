/**
 * A client that drops mid-upload resumes where the coordinator's durable
 * bytes end: `GetUploadStatus` reports them, the resumed upload with the same
 * update id completes and is acknowledged, and the dropped attempt never
 * counted as an update.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { status } from "@grpc/grpc-js";
import { watchResults } from "@tributary/client/nats";
import {
  type ClientService,
  GetUploadStatusRequestSchema,
  type GetUploadStatusResponse,
  type GrpcClient,
} from "@tributary/protocol";
import { assertEqualsDirectMerge } from "./helpers/direct-merge.ts";
import { expectStatus, waitFor } from "./helpers/expect.ts";
import { type Fixture, startFixture, type TestClient } from "./helpers/federation.ts";
import { bearer, call, type UploadSpec, upload } from "./helpers/grpc-calls.ts";

function uploadStatus(
  client: GrpcClient<typeof ClientService>,
  c: TestClient,
  federationId: string,
  updateId: string,
): Promise<GetUploadStatusResponse> {
  return call(
    client.getUploadStatus,
    client,
    create(GetUploadStatusRequestSchema, { federationId, round: 1, updateId }),
    bearer(c.token),
  );
}

describe("resuming a dropped upload", () => {
  let fx: Fixture;
  before(async () => {
    fx = await startFixture({ clients: 2, method: "from", rank: 4 });
    await fx.joinAll();
  });
  after(async () => {
    await fx.close();
  });

  it("resumes from the durable bytes and merges the whole update", async () => {
    const fed = fx.federationId;
    const [c1, c2] = fx.clients;
    const watch = watchResults({ servers: fx.nats.url, federationId: fed, reconnectTimeWaitMs: 200 });
    try {
      const base: UploadSpec = {
        federationId: fed,
        round: 1,
        clientId: c1.id,
        updateId: "resumable",
        samples: 100,
        configJson: c1.configJson,
        bytes: c1.bytes,
      };
      const half = Math.floor(c1.bytes.length / 2);

      // The connection drops after half the bytes.
      await assert.rejects(upload(fx.client, c1.token, { ...base, stopAt: half }), {
        code: status.CANCELLED,
      });
      const partial = await waitFor("the dropped upload's bytes to be durable", async () => {
        const s = await uploadStatus(fx.client, c1, fed, "resumable");
        return s.receivedBytes === BigInt(half) && s;
      });
      assert.equal(partial.complete, false);
      // Nothing of the dropped attempt counts as an update.
      assert.deepEqual(fx.service.coordinator.updates(fed, 1), []);
      assert.equal(await fx.service.coordinator.result(fed, 1), undefined);

      // Resuming from anywhere else is refused with where to resume from.
      await expectStatus(
        upload(fx.client, c1.token, { ...base, resumeOffset: half - 10 }),
        status.FAILED_PRECONDITION,
        new RegExp(
          `resume_offset ${half - 10} does not match the ${half} bytes already stored; resume from ${half}`,
        ),
      );
      // Ending the stream early keeps the bytes and says where to go on.
      const threeQuarters = Math.floor((c1.bytes.length * 3) / 4);
      await expectStatus(
        upload(fx.client, c1.token, {
          ...base,
          resumeOffset: half,
          bytes: c1.bytes.subarray(0, threeQuarters),
          totalSize: c1.bytes.length,
          contentHash: createHash("sha256").update(c1.bytes).digest("hex"),
        }),
        status.INVALID_ARGUMENT,
        new RegExp(
          `commit after ${threeQuarters} of ${c1.bytes.length} bytes; send the rest from offset ${threeQuarters}`,
        ),
      );
      assert.equal(
        (await uploadStatus(fx.client, c1, fed, "resumable")).receivedBytes,
        BigInt(threeQuarters),
      );
      assert.deepEqual(fx.service.coordinator.updates(fed, 1), []);

      const ack = await upload(fx.client, c1.token, { ...base, resumeOffset: threeQuarters });
      assert.equal(ack.accepted, true);
      assert.equal(ack.duplicate, false);
      assert.equal(ack.updateId, "resumable");
      assert.equal(ack.size, BigInt(c1.bytes.length));
      assert.equal(ack.contentHash, createHash("sha256").update(c1.bytes).digest("hex"));
      const done = await uploadStatus(fx.client, c1, fed, "resumable");
      assert.equal(done.complete, true);
      assert.equal(done.receivedBytes, BigInt(c1.bytes.length));
      assert.deepEqual(
        fx.service.coordinator.updates(fed, 1).map((u) => [u.clientId, u.updateId]),
        [[c1.id, "resumable"]],
      );

      await upload(fx.client, c2.token, {
        ...base,
        clientId: c2.id,
        updateId: "whole",
        samples: 200,
        configJson: c2.configJson,
        bytes: c2.bytes,
      });
      const next = await watch[Symbol.asyncIterator]().next();
      assert.equal(next.done, false);
      assert.deepEqual(next.value.clients, [c1.id, c2.id]);
      const adapter = await watch.fetchAdapter(next.value);
      await assertEqualsDirectMerge(adapter, [c1.dir, c2.dir], { rank: 4, samples: [100, 200] });
    } finally {
      await watch.close();
    }
  });
});
