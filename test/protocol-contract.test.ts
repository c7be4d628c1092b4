/**
 * `proto/` is the contract: behaviours it documents, checked against the real
 * coordinator over gRPC and the real nats-server, as a client in another
 * language would see them — status codes with their `tributary.v1.ErrorReason`
 * and metadata in `grpc-status-details-bin`, `BadRequest` field violations,
 * malformed frames, the documented defaults, and the NATS announcement as the
 * proto3 JSON of `tributary.v1.RoundAnnouncement`.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { create, fromJson, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import {
  CreateFederationRequestSchema,
  Dtype,
  EnrollClientRequestSchema,
  type EnrollClientResponse,
  FetchAdapterRequestSchema,
  JoinRequestSchema,
  type JoinResponse,
  RoundAnnouncementSchema,
  statusDetailsOf,
} from "@tributary/protocol";
import { expectError, waitFor } from "./helpers/expect.ts";
import { type Fixture, MODULES, OPERATOR_TOKEN, startFixture } from "./helpers/federation.ts";
import { bearer, call, fetchAdapter, upload } from "./helpers/grpc-calls.ts";
import { publishedResults } from "./helpers/nats-inspect.ts";

/** Sends `bytes` as the request of `path` without any protobuf encoding. */
function rawCall(address: string, path: string, bytes: Buffer, md: grpc.Metadata, clientStream: boolean) {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  const identity = (b: Buffer) => b;
  return new Promise<Buffer>((resolve, reject) => {
    const done = (err: grpc.ServiceError | null, res?: Buffer) => {
      client.close();
      if (err !== null) reject(err);
      else resolve(res ?? Buffer.alloc(0));
    };
    if (clientStream) {
      const stream = client.makeClientStreamRequest(path, identity, identity, md, done);
      stream.write(bytes);
      stream.end();
    } else client.makeUnaryRequest(path, identity, identity, bytes, md, done);
  });
}

describe("the protocol contract against the real coordinator", { timeout: 90_000 }, () => {
  let fx: Fixture;
  const operatorMd = bearer(OPERATOR_TOKEN);
  before(async () => {
    fx = await startFixture({ clients: 2, method: "fedavg", rank: 4 });
  });
  after(async () => {
    await fx.close();
  });

  const createFederation = (json: unknown) =>
    call(
      fx.operator.createFederation,
      fx.operator,
      fromJson(CreateFederationRequestSchema, json as never),
      operatorMd,
    );

  const federationJson = (id: string, extra: Record<string, unknown> = {}) => ({
    federationId: id,
    schema: {
      baseModelId: "synthetic/tiny-llama",
      modules: MODULES.map((m) => ({ name: m.name, dIn: m.dIn, dOut: m.dOut, maxRank: 8 })),
    },
    merge: { method: "fedavg", rank: 4 },
    policy: { minClients: 2, quorum: 2, deadline: "60s" },
    ...extra,
  });

  it("an empty allowed_dtypes means any of F32, F16, BF16", async () => {
    await createFederation(federationJson("any-dtype"));
    const enrolled: EnrollClientResponse = await call(
      fx.operator.enrollClient,
      fx.operator,
      create(EnrollClientRequestSchema, { federationId: "any-dtype", clientId: "c" }),
      operatorMd,
    );
    const joined: JoinResponse = await call(
      fx.client.join,
      fx.client,
      create(JoinRequestSchema, { federationId: "any-dtype" }),
      bearer(enrolled.token),
    );
    assert.deepEqual(
      [...(joined.federation?.schema?.allowedDtypes ?? [])].sort(),
      [Dtype.F32, Dtype.F16, Dtype.BF16].sort(),
    );
    assert.equal(joined.clientId, "c");
  });

  it("a taken federation id is ALREADY_EXISTS (FEDERATION_EXISTS)", async () => {
    const meta = await expectError(
      createFederation(federationJson(fx.federationId)),
      grpc.status.ALREADY_EXISTS,
      "FEDERATION_EXISTS",
      /already exists/,
    );
    assert.equal(meta.federation_id, fx.federationId);
  });

  it("an invalid federation is INVALID_ARGUMENT (INVALID_FEDERATION) naming the field in BadRequest", async () => {
    let err: unknown;
    try {
      await createFederation(
        federationJson("bad-quorum", {
          policy: { minClients: 2, quorum: 3, cohortSize: 2, deadline: "60s" },
        }),
      );
    } catch (e) {
      err = e;
    }
    const details = statusDetailsOf(err as grpc.ServiceError);
    assert.equal((err as grpc.ServiceError).code, grpc.status.INVALID_ARGUMENT);
    assert.equal(details?.errorInfo?.reason, "INVALID_FEDERATION");
    assert.equal(details?.errorInfo?.metadata.field, "policy.quorum");
    assert.deepEqual(
      details?.fieldViolations.map((v) => v.field),
      ["policy.quorum"],
    );
  });

  it("unknown federations and rounds are NOT_FOUND with their reason", async () => {
    const c = fx.clients[0];
    await expectError(
      call(fx.client.join, fx.client, create(JoinRequestSchema, { federationId: "nope" }), bearer(c.token)),
      grpc.status.PERMISSION_DENIED,
      "NOT_ENROLLED",
    );
    const meta = await expectError(
      fetchAdapter(
        fx.client,
        c.token,
        create(FetchAdapterRequestSchema, {
          federationId: fx.federationId,
          selector: { case: "round", value: 99 },
        }),
      ),
      grpc.status.NOT_FOUND,
      "ROUND_NOT_FOUND",
    );
    assert.equal(meta.round, "99");
  });

  it("a request that is not protobuf is INVALID_ARGUMENT (MALFORMED_MESSAGE), unary and streaming", async () => {
    const garbage = Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]); // field 1, length far past the end
    const md = bearer(fx.clients[0].token);
    const unary = await expectError(
      rawCall(fx.service.endpoint.address, "/tributary.v1.ClientService/Join", garbage, md, false),
      grpc.status.INVALID_ARGUMENT,
      "MALFORMED_MESSAGE",
    );
    assert.equal(unary.message, "tributary.v1.JoinRequest");
    await expectError(
      rawCall(fx.service.endpoint.address, "/tributary.v1.ClientService/SubmitUpdate", garbage, md, true),
      grpc.status.INVALID_ARGUMENT,
      "MALFORMED_MESSAGE",
    );
    // The coordinator goes on serving.
    const ok = await rawCall(
      fx.service.endpoint.address,
      "/tributary.v1.ClientService/Join",
      Buffer.from(toBinary(JoinRequestSchema, create(JoinRequestSchema, { federationId: fx.federationId }))),
      md,
      false,
    );
    assert.ok(ok.length > 0);
  });

  it("a wrong resume_offset is FAILED_PRECONDITION (RESUME_OFFSET_MISMATCH) with the offset to resume from", async () => {
    await fx.joinAll();
    const c = fx.clients[0];
    const meta = await expectError(
      upload(fx.client, c.token, {
        federationId: fx.federationId,
        round: 1,
        clientId: c.id,
        updateId: "resume-wrong",
        configJson: c.configJson,
        bytes: c.bytes,
        resumeOffset: 1000,
      }),
      grpc.status.FAILED_PRECONDITION,
      "RESUME_OFFSET_MISMATCH",
    );
    assert.equal(meta.resume_offset, "0");
    assert.equal(meta.requested_offset, "1000");
  });

  it("a client's third concurrent upload is RESOURCE_EXHAUSTED (QUOTA_EXCEEDED), naming the limit", async () => {
    const c = fx.clients[1];
    const open = [0, 1].map(() => {
      const stream = fx.client.submitUpdate(bearer(c.token), () => {});
      stream.on("error", () => {});
      return stream;
    });
    try {
      await new Promise((r) => setTimeout(r, 100)); // let both reach the coordinator
      const meta = await expectError(
        upload(fx.client, c.token, {
          federationId: fx.federationId,
          round: 1,
          clientId: c.id,
          updateId: "third",
          configJson: c.configJson,
          bytes: c.bytes,
        }),
        grpc.status.RESOURCE_EXHAUSTED,
        "QUOTA_EXCEEDED",
        /2 uploads of this client are still running \(limit concurrent_uploads = 2\)/,
      );
      assert.deepEqual(meta, { quota: "concurrent_uploads", limit: "2" });
    } finally {
      for (const s of open) s.cancel();
    }
    // Once they end, the client may upload again (this one is refused for its round, not its count).
    await waitFor("the streams to be released", async () => {
      try {
        await upload(fx.client, c.token, {
          federationId: fx.federationId,
          round: 99,
          clientId: c.id,
          updateId: "later",
          configJson: c.configJson,
          bytes: c.bytes,
        });
        return false;
      } catch (err) {
        return statusDetailsOf(err as grpc.ServiceError)?.errorInfo?.reason === "STALE_ROUND";
      }
    });
  });

  it("publishes the announcement as the proto3 JSON of tributary.v1.RoundAnnouncement", async () => {
    await Promise.all(
      fx.clients.map((c) =>
        upload(fx.client, c.token, {
          federationId: fx.federationId,
          round: 1,
          clientId: c.id,
          updateId: `u-${c.id}`,
          configJson: c.configJson,
          bytes: c.bytes,
        }),
      ),
    );
    let raw: unknown[] = [];
    for (let i = 0; i < 200 && raw.length === 0; i++) {
      raw = (await publishedResults(fx.nats.url, fx.federationId)).announcements;
      if (raw.length === 0) await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(raw.length, 1);
    const message = fromJson(RoundAnnouncementSchema, raw[0] as never); // strict: unknown keys are refused
    assert.equal(message.federationId, fx.federationId);
    assert.equal(message.round, 1);
    assert.match(message.contentHash, /^[0-9a-f]{64}$/);
    assert.equal(
      message.objects?.safetensors,
      `${fx.federationId}/round-1/${message.contentHash}/adapter_model.safetensors`,
    );
    assert.equal(
      message.objects?.config,
      `${fx.federationId}/round-1/${message.contentHash}/adapter_config.json`,
    );
    const fetched = await fetchAdapter(
      fx.client,
      fx.clients[0].token,
      create(FetchAdapterRequestSchema, {
        federationId: fx.federationId,
        selector: { case: "round", value: 1 },
      }),
    );
    assert.equal(fetched.contentHash, message.contentHash, "one hash representation: hex everywhere");
    assert.equal(createHash("sha256").update(fetched.bytes).digest("hex"), message.contentHash);
    assert.equal(Number(message.size), fetched.bytes.length);
  });
});
