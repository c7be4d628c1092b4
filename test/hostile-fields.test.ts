/**
 * Oversized and malformed request fields against the real coordinator: each
 * is refused within milliseconds with INVALID_ARGUMENT naming the field and
 * the limit, the status echoes at most a short prefix of the value, and the
 * connection stays usable; one hash rule (upper case accepted, stored lower
 * case); an upload cut by its round closing is told the round is stale.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import {
  FetchAdapterRequestSchema,
  JoinRequestSchema,
  SubmitUpdateRequestSchema,
  UPDATE_HEADER_LIMITS,
  WatchRoundsRequestSchema,
} from "@tributary/protocol";
import { MAX_CONCURRENT_WATCHES } from "../server/src/transport/grpc/client-service.ts";
import { expectError } from "./helpers/expect.ts";
import { type Fixture, startFixture, type TestClient } from "./helpers/federation.ts";
import { bearer, call, fetchAdapter, type UploadSpec, upload } from "./helpers/grpc-calls.ts";

const { INVALID_ARGUMENT, FAILED_PRECONDITION } = grpc.status;
const BIG = "x".repeat(100 * 1024);

describe("request fields: limits, statuses and the hash rule", () => {
  let fx: Fixture;
  let c1: TestClient;
  let c2: TestClient;
  const spec = (c: TestClient, extra: Partial<UploadSpec> = {}): UploadSpec => ({
    federationId: fx.federationId,
    round: 1,
    clientId: c.id,
    updateId: `u-${c.id}`,
    configJson: c.configJson,
    bytes: c.bytes,
    ...extra,
  });
  /** A refusal of `promise` as INVALID_ARGUMENT naming `field`, fast, with a short message. */
  const refused = async (promise: Promise<unknown>, field: string, pattern: RegExp) => {
    const t0 = performance.now();
    let message = "";
    await expectError(
      promise.catch((err: grpc.ServiceError) => {
        message = err.details;
        throw err;
      }),
      INVALID_ARGUMENT,
      "INVALID_FIELD",
      pattern,
    );
    assert.ok(performance.now() - t0 < 2_000, `refused after ${performance.now() - t0} ms`);
    assert.ok(message.length < 400, `the status echoes ${message.length} characters`);
    assert.match(message, new RegExp(field));
  };
  const join = () =>
    call(
      fx.client.join,
      fx.client,
      create(JoinRequestSchema, { federationId: fx.federationId }),
      bearer(c1.token),
    );

  before(async () => {
    fx = await startFixture({ clients: 2, method: "fedavg", rank: 4, quorum: 2 });
    [c1, c2] = fx.clients;
    await fx.joinAll();
  });
  after(async () => {
    await fx.close();
  });

  it("refuses 100 KB ids, hashes and metric names at once, and the connection goes on", async () => {
    await refused(
      upload(fx.client, c1.token, spec(c1, { updateId: BIG })),
      "update_id",
      /update_id "x+"… \(102400 characters\) must be/,
    );
    await join();
    await refused(
      upload(fx.client, c1.token, spec(c1, { federationId: BIG })),
      "federation_id",
      /federation_id "x+"…/,
    );
    await refused(
      upload(fx.client, c1.token, spec(c1, { contentHash: BIG })),
      "content_hash",
      /64 hex digits/,
    );
    await refused(
      upload(fx.client, c1.token, spec(c1, { metrics: { [BIG]: 1 } })),
      "metrics",
      /metrics name "x+"…/,
    );
    await refused(
      call(fx.client.join, fx.client, create(JoinRequestSchema, { federationId: BIG }), bearer(c1.token)),
      "federation_id",
      /federation_id "x+"…/,
    );
    const res = (await join()) as { clientId: string };
    assert.equal(res.clientId, c1.id, "the connection still answers");
  });

  it("bounds the metrics map: entries, names, values", async () => {
    const many = Object.fromEntries(Array.from({ length: 300_000 }, (_, i) => [`m${i}`, i]));
    await refused(
      upload(fx.client, c1.token, spec(c1, { metrics: many })),
      "metrics",
      new RegExp(`300000 entries, above the limit of ${UPDATE_HEADER_LIMITS.metrics}`),
    );
    for (const name of ["", "__proto__", "a b", "9lives", "é"]) {
      await refused(
        upload(fx.client, c1.token, spec(c1, { metrics: { [name]: 1 } })),
        "metrics",
        /metrics name/,
      );
    }
    await refused(
      upload(fx.client, c1.token, spec(c1, { updateId: "a:b" })),
      "update_id",
      /not '\.' or '\.\.'/,
    );
  });

  it("accepts an upper-case content hash and stores it in lower case; a malformed one in FetchAdapter is INVALID_ARGUMENT", async () => {
    const hash = createHash("sha256").update(c1.bytes).digest("hex");
    const ack = await upload(fx.client, c1.token, spec(c1, { contentHash: hash.toUpperCase() }));
    assert.equal(ack.contentHash, hash);
    assert.equal(fx.service.coordinator.updates(fx.federationId, 1)[0].sha256, hash);
    await refused(
      fetchAdapter(
        fx.client,
        c1.token,
        create(FetchAdapterRequestSchema, {
          federationId: fx.federationId,
          selector: { case: "contentHash", value: "not-a-hash" },
        }),
      ),
      "content_hash",
      /content_hash "not-a-hash" must be a SHA-256/,
    );
  });

  it("caps a client's WatchRounds streams, naming the limit", async () => {
    const open = () => {
      const stream = fx.client.watchRounds(
        create(WatchRoundsRequestSchema, { federationId: fx.federationId }),
        bearer(c2.token),
      );
      const first = new Promise<unknown>((resolve, reject) => {
        stream.once("data", resolve);
        stream.once("error", reject);
      });
      first.catch(() => undefined);
      return { stream, first };
    };
    const streams = Array.from({ length: MAX_CONCURRENT_WATCHES }, open);
    for (const s of streams) await s.first;
    const extra = open();
    const meta = await expectError(
      extra.first,
      grpc.status.RESOURCE_EXHAUSTED,
      "QUOTA_EXCEEDED",
      /WatchRounds streams of this client are still running/,
    );
    assert.equal(meta.quota, "concurrent_watches");
    streams[0].stream.cancel();
    await new Promise((r) => setTimeout(r, 100));
    const again = open();
    await again.first;
    for (const s of [...streams, again]) s.stream.cancel();
  });

  it("tells an upload cut by its round closing that the round is stale", async () => {
    // c2 sends half its bytes and stalls; the operator closes round 1 under it.
    const half = Math.floor(c2.bytes.length / 2);
    const stalled = new Promise<unknown>((resolve, reject) => {
      const stream = fx.client.submitUpdate(bearer(c2.token), (err, res) =>
        err ? reject(err) : resolve(res),
      );
      stream.write(
        create(SubmitUpdateRequestSchema, {
          payload: {
            case: "header",
            value: {
              federationId: fx.federationId,
              round: 1,
              clientId: c2.id,
              updateId: `u-${c2.id}`,
              sampleCount: 100n,
              contentHash: createHash("sha256").update(c2.bytes).digest("hex"),
              totalSize: BigInt(c2.bytes.length),
              adapterConfigJson: c2.configJson,
              resumeOffset: 0n,
            },
          },
        }),
      );
      const chunk = (bytes: Uint8Array) =>
        create(SubmitUpdateRequestSchema, { payload: { case: "chunk", value: bytes } });
      stream.write(chunk(c2.bytes.subarray(0, half)));
      setTimeout(() => {
        fx.service.coordinator.closeRound(fx.federationId, 1).then(
          () =>
            setTimeout(() => {
              stream.write(chunk(c2.bytes.subarray(half)));
              stream.end();
            }, 200),
          reject,
        );
      }, 300);
    });
    await expectError(stalled, FAILED_PRECONDITION, "STALE_ROUND", /round 1 is not open for updates/);
  });
});
