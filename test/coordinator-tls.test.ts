import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { callUnary, GetStatusRequestSchema, makeClient, OperatorService } from "@tributary/protocol";
import { silentLog } from "../server/src/core/log.ts";
import { type RunningService, startService } from "../server/src/service/coordinator-service.ts";
import { makeCert } from "./helpers/certs.ts";
import { startNatsServer, type TestNatsServer } from "./helpers/nats-server.ts";

describe("gRPC over TLS when a certificate is configured", () => {
  let root: string;
  let nats: TestNatsServer;
  let svc: RunningService;
  let cert: Buffer;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), "tributary-tls-"));
    // A self-signed certificate for 127.0.0.1 (the test's CA is the certificate itself).
    const made = makeCert(root, "cert", { cn: "127.0.0.1", san: "IP:127.0.0.1,DNS:localhost" });
    cert = made.cert;
    nats = await startNatsServer({ jetstream: true });
    svc = await startService({
      dataDir: join(root, "data"),
      port: 0,
      natsUrl: nats.url,
      operatorToken: "trb_tls-test-operator-token-000000",
      tls: { cert, key: made.key },
      threads: 0,
      log: silentLog,
    });
  });
  after(async () => {
    await svc.close();
    await nats.close();
    await rm(root, { recursive: true, force: true });
  });

  function md(): grpc.Metadata {
    const m = new grpc.Metadata();
    m.set("authorization", "Bearer trb_tls-test-operator-token-000000");
    return m;
  }

  it("serves authenticated calls to a client that trusts the certificate", async () => {
    const op = makeClient(OperatorService, svc.endpoint.address, grpc.credentials.createSsl(cert));
    try {
      const status = await callUnary(op, "getStatus", create(GetStatusRequestSchema), md());
      assert.deepEqual(status.federations, []);
    } finally {
      op.close();
    }
  });

  it("refuses plaintext clients", async () => {
    const op = makeClient(OperatorService, svc.endpoint.address, grpc.credentials.createInsecure());
    try {
      await assert.rejects(
        callUnary(op, "getStatus", create(GetStatusRequestSchema), md(), { deadline: Date.now() + 3000 }),
        (err: grpc.ServiceError) =>
          err.code === grpc.status.UNAVAILABLE || err.code === grpc.status.DEADLINE_EXCEEDED,
      );
    } finally {
      op.close();
    }
  });
});
