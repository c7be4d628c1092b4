/**
 * Mutual TLS: with a client CA configured, the coordinator accepts only
 * clients presenting a certificate signed by it; the certificate's subject CN
 * is the client id, alone or together with a token that must belong to the
 * same client. Certificates made with openssl for this test.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import {
  ClientService,
  CreateFederationRequestSchema,
  callUnary,
  EnrollClientRequestSchema,
  JoinRequestSchema,
  makeClient,
  OperatorService,
} from "@tributary/protocol";
import { connect } from "../client-sdk/src/index.ts";
import { silentLog } from "../server/src/core/log.ts";
import { type RunningService, startService } from "../server/src/service/coordinator-service.ts";
import { expectError, expectStatus } from "./helpers/expect.ts";
import { MODULES } from "./helpers/federation.ts";
import { bearer } from "./helpers/grpc-calls.ts";
import { startNatsServer, type TestNatsServer } from "./helpers/nats-server.ts";

const OPERATOR_TOKEN = "trb_mtls-test-operator-token-00000";

describe("mutual TLS: client certificates from the configured CA", { timeout: 60_000 }, () => {
  let root: string;
  let nats: TestNatsServer;
  let svc: RunningService;
  const pem: Record<string, Buffer> = {};
  const tokens: Record<string, string> = {};
  const openssl = (...args: string[]) => execFileSync("openssl", args, { cwd: root, stdio: "ignore" });

  /** A key and a certificate with subject CN `cn`, signed by CA `ca` (`ca.pem`/`ca.key` in root). */
  const issue = async (name: string, cn: string, ca: string, san?: string) => {
    openssl(
      "req",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-subj",
      `/CN=${cn}`,
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.csr`,
    );
    const ext = join(root, `${name}.ext`);
    await writeFile(ext, san === undefined ? "basicConstraints=CA:FALSE\n" : `subjectAltName=${san}\n`);
    openssl(
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      `${ca}.pem`,
      "-CAkey",
      `${ca}.key`,
      "-CAcreateserial",
      "-days",
      "1",
      "-extfile",
      ext,
      "-out",
      `${name}.pem`,
    );
    pem[`${name}.pem`] = await readFile(join(root, `${name}.pem`));
    pem[`${name}.key`] = await readFile(join(root, `${name}.key`));
  };

  const clientOf = (cert?: string) =>
    makeClient(
      ClientService,
      svc.endpoint.address,
      grpc.credentials.createSsl(
        pem["ca.pem"],
        cert === undefined ? null : pem[`${cert}.key`],
        cert === undefined ? null : pem[`${cert}.pem`],
      ),
    );
  const join_ = (cert: string | undefined, md: grpc.Metadata) => {
    const c = clientOf(cert);
    return callUnary(c, "join", create(JoinRequestSchema, { federationId: "mtls" }), md, {
      deadline: Date.now() + 5_000,
    }).finally(() => c.close());
  };

  before(async () => {
    root = await mkdtemp(join(tmpdir(), "tributary-mtls-"));
    for (const ca of ["ca", "rogue-ca"]) {
      openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        `/CN=${ca}`,
        "-keyout",
        `${ca}.key`,
        "-out",
        `${ca}.pem`,
      );
    }
    pem["ca.pem"] = await readFile(join(root, "ca.pem"));
    await issue("server", "127.0.0.1", "ca", "IP:127.0.0.1");
    await issue("operator", "operator", "ca");
    await issue("client-1", "client-1", "ca");
    await issue("rogue", "client-1", "rogue-ca");
    nats = await startNatsServer({ jetstream: true });
    svc = await startService({
      dataDir: join(root, "data"),
      port: 0,
      natsUrl: nats.url,
      operatorToken: OPERATOR_TOKEN,
      tls: { cert: pem["server.pem"], key: pem["server.key"], clientCa: pem["ca.pem"] },
      threads: 0,
      log: silentLog,
    });
    const operator = makeClient(
      OperatorService,
      svc.endpoint.address,
      grpc.credentials.createSsl(pem["ca.pem"], pem["operator.key"], pem["operator.pem"]),
    );
    try {
      await callUnary(
        operator,
        "createFederation",
        create(CreateFederationRequestSchema, {
          federationId: "mtls",
          schema: {
            baseModelId: "synthetic/tiny-llama",
            modules: MODULES.map((m) => ({ name: m.name, dIn: m.dIn, dOut: m.dOut, maxRank: 8 })),
          },
          merge: { method: "fedavg", rank: 4 },
          policy: { minClients: 2, quorum: 2, deadline: durationFromMs(60_000) },
        }),
        bearer(OPERATOR_TOKEN),
      );
      for (const id of ["client-1", "client-2"]) {
        const res = await callUnary(
          operator,
          "enrollClient",
          create(EnrollClientRequestSchema, { federationId: "mtls", clientId: id }),
          bearer(OPERATOR_TOKEN),
        );
        tokens[id] = res.token;
      }
    } finally {
      operator.close();
    }
  });
  after(async () => {
    await svc?.close();
    await nats?.close();
    await rm(root, { recursive: true, force: true });
  });

  it("a certificate alone identifies the client (its CN is the client id)", async () => {
    const res = await join_("client-1", new grpc.Metadata());
    assert.equal(res.clientId, "client-1");
  });

  it("a certificate and a token must name the same client", async () => {
    assert.equal((await join_("client-1", bearer(tokens["client-1"]))).clientId, "client-1");
    await expectError(
      join_("client-1", bearer(tokens["client-2"])),
      grpc.status.PERMISSION_DENIED,
      "PERMISSION_DENIED",
      /the client certificate names "client-1" but the token belongs to client "client-2"/,
    );
  });

  it("refuses connections without a client certificate or with one from another CA", async () => {
    await expectStatus(
      join_(undefined, bearer(tokens["client-1"])),
      grpc.status.UNAVAILABLE,
      /certificate required/,
    );
    await expectStatus(
      join_("rogue", new grpc.Metadata()),
      grpc.status.UNAVAILABLE,
      /No connection established/,
    );
  });

  it("the client SDK connects with a certificate and no token", async () => {
    const client = connect({
      coordinator: svc.endpoint.address,
      token: "",
      tls: { ca: pem["ca.pem"], cert: pem["client-1.pem"], key: pem["client-1.key"] },
    });
    try {
      const joined = await client.join("mtls");
      assert.equal(joined.clientId, "client-1");
    } finally {
      await client.close();
    }
  });
});
