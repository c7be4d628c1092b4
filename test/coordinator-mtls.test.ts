/**
 * Mutual TLS: with a client CA configured, the coordinator accepts only
 * clients presenting a certificate signed by it; the certificate's subject CN
 * is the client id, alone or together with a token that must belong to the
 * same client. Certificates made with openssl for this test.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
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
import { runClientCli } from "../client-sdk/src/cli.ts";
import { connect } from "../client-sdk/src/index.ts";
import { silentLog } from "../server/src/core/log.ts";
import { type RunningService, startService } from "../server/src/service/coordinator-service.ts";
import { makeCert } from "./helpers/certs.ts";
import { expectError, expectStatus } from "./helpers/expect.ts";
import { MODULES } from "./helpers/federation.ts";
import { bearer } from "./helpers/grpc-calls.ts";
import { startNatsServer, type TestNatsServer } from "./helpers/nats-server.ts";

const OPERATOR_TOKEN = "trb_mtls-test-operator-token-00000";
const PYTHON = process.env.TRIBUTARY_PYTHON ?? "/usr/bin/python3";
const PYTHON_DIR = fileURLToPath(new URL("../client-sdk/python", import.meta.url));

/**
 * Joins federation "mtls" from the Python client with certificate `cert`
 * (files in `dir`) and no token; prints the client id, or the exception's
 * class and message. Asynchronous: the coordinator runs in this process.
 */
async function pythonJoin(dir: string, address: string, cert: string): Promise<string> {
  return python(dir, ["-c", PYTHON_JOIN, dir, address, cert]);
}

async function python(dir: string, args: readonly string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(PYTHON, args, {
    cwd: dir,
    env: { ...process.env, PYTHONPATH: PYTHON_DIR, PYTHONDONTWRITEBYTECODE: "1" },
    timeout: 30_000,
  });
  return stdout.trim();
}

const PYTHON_JOIN = [
  "import sys, tributary_client as t",
  "d, addr, cert = sys.argv[1:]",
  "try:",
  "    with t.connect(addr, '', tls_ca=f'{d}/ca.pem', tls_cert=f'{d}/{cert}.pem', tls_key=f'{d}/{cert}.key', retries=0) as c:",
  "        print(c.join('mtls').client_id)",
  "except t.TributaryError as e:",
  "    print(type(e).__name__, e)",
].join("\n");

describe("mutual TLS: client certificates from the configured CA", { timeout: 60_000 }, () => {
  let root: string;
  let nats: TestNatsServer;
  let svc: RunningService;
  const pem: Record<string, Buffer> = {};
  const tokens: Record<string, string> = {};
  /** Certificate `name` with subject CN `cn`, signed by CA `ca`, into `pem`. */
  const issue = (name: string, cn: string, ca: string, san?: string) => {
    const made = makeCert(root, name, { cn, ca, ...(san !== undefined ? { san } : {}) });
    pem[`${name}.pem`] = made.cert;
    pem[`${name}.key`] = made.key;
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
    for (const ca of ["ca", "rogue-ca"]) makeCert(root, ca, { cn: ca });
    pem["ca.pem"] = await readFile(join(root, "ca.pem"));
    issue("server", "127.0.0.1", "ca", "IP:127.0.0.1");
    issue("operator", "operator", "ca");
    issue("client-1", "client-1", "ca");
    issue("rogue", "client-1", "rogue-ca");
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

  it("the Python client connects with a certificate and no token, and is refused with another CA's", async () => {
    assert.equal(await pythonJoin(root, svc.endpoint.address, "client-1"), "client-1");
    assert.match(await pythonJoin(root, svc.endpoint.address, "rogue"), /^UnavailableError /);
  });

  it("both client CLIs join with --tls-cert/--tls-key and no token, and later commands use the saved state", async () => {
    const tls = ["--tls-ca", join(root, "ca.pem"), "--tls-cert", join(root, "client-1.pem")];
    const conn = ["--coordinator", svc.endpoint.address, "--federation", "mtls", ...tls];
    const out: string[] = [];
    const io = { out: (l: string) => out.push(l), err: (l: string) => out.push(l) };
    const state = join(root, "ts-state.json");
    const noKey = await runClientCli(["join", ...conn, "--state", state], io, {});
    assert.equal(noKey, 2, out.join("\n"));
    assert.match(out.join("\n"), /--tls-cert and --tls-key go together/);
    out.length = 0;
    const key = ["--tls-key", join(root, "client-1.key")];
    assert.equal(
      await runClientCli(["join", ...conn, ...key, "--state", state, "--json"], io, {}),
      0,
      out.join("\n"),
    );
    assert.equal(JSON.parse(out.at(-1) ?? "{}").clientId, "client-1");
    const saved = JSON.parse(await readFile(state, "utf8"));
    assert.equal(saved.token, undefined);
    assert.equal(saved.tlsKey, join(root, "client-1.key"));
    out.length = 0;
    assert.equal(await runClientCli(["status", "--state", state], io, {}), 0, out.join("\n"));

    const pyState = join(root, "py-state.json");
    const joined = await python(root, [
      "-m",
      "tributary_client",
      "join",
      ...conn,
      ...key,
      "--state",
      pyState,
      "--json",
    ]);
    assert.equal(JSON.parse(joined.split("\n").at(-1) ?? "{}").clientId, "client-1");
    await python(root, ["-m", "tributary_client", "status", "--state", pyState]);
  });
});
