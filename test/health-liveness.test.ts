/**
 * What operators' tooling and the scheduler see of the coordinator, against
 * the real process and gRPC server: `grpc.health.v1.Health` (SERVING, then
 * NOT_SERVING while `tributary serve` drains on SIGTERM), server reflection
 * listing the services, the page's `/healthz`, and liveness that is true — a
 * client that joined and went away leaves the connected set after the
 * liveness timeout, and the scheduler, `GetStatus` and the page agree.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import {
  GetStatusRequestSchema,
  type GetStatusResponse,
  HeartbeatRequestSchema,
  type HeartbeatResponse,
  JoinRequestSchema,
  type JoinResponse,
  WatchRoundsRequestSchema,
} from "@tributary/protocol";
import { service as healthService } from "grpc-health-check";
import { waitFor } from "./helpers/expect.ts";
import { type Fixture, OPERATOR_TOKEN, startFixture } from "./helpers/federation.ts";
import { bearer, call } from "./helpers/grpc-calls.ts";
import { startNatsServer, type TestNatsServer } from "./helpers/nats-server.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const require = createRequire(import.meta.url);

type Check = (
  req: { service: string },
  cb: (err: grpc.ServiceError | null, res?: { status: string }) => void,
) => void;

/** `grpc.health.v1.Health/Check` of `service` on `address`. */
async function healthOf(address: string, service: string): Promise<string> {
  const Client = grpc.makeGenericClientConstructor(healthService, "Health");
  const client = new Client(address, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
    check: Check;
  };
  try {
    return await new Promise((resolve, reject) =>
      client.check({ service }, (err, res) => (err ? reject(err) : resolve(String(res?.status)))),
    );
  } finally {
    client.close();
  }
}

/** The service names server reflection (`grpc.reflection.v1`) lists on `address`. */
async function reflectedServices(address: string): Promise<string[]> {
  const proto = join(
    dirname(require.resolve("@grpc/reflection/package.json")),
    "build/proto/grpc/reflection/v1",
  );
  const pkg = loadSync(join(proto, "reflection.proto"), { keepCase: true });
  const def = pkg["grpc.reflection.v1.ServerReflection"] as grpc.ServiceDefinition;
  const Client = grpc.makeGenericClientConstructor(def, "ServerReflection");
  type Listed = { list_services_response?: { service: { name: string }[] } };
  const client = new Client(address, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
    ServerReflectionInfo(): grpc.ClientDuplexStream<unknown, Listed>;
  };
  try {
    return await new Promise((resolve, reject) => {
      const stream = client.ServerReflectionInfo();
      stream.on("data", (res: Listed) => {
        resolve((res.list_services_response?.service ?? []).map((s) => s.name).sort());
        stream.end();
      });
      stream.on("error", reject);
      stream.write({ list_services: "" });
    });
  } finally {
    client.close();
  }
}

describe("health, reflection and draining of `tributary serve`", { timeout: 60_000 }, () => {
  let nats: TestNatsServer;
  let dir: string;
  before(async () => {
    nats = await startNatsServer({ jetstream: true });
    dir = await mkdtemp(join(tmpdir(), "tributary-health-"));
  });
  after(async () => {
    await nats?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("serves health and reflection, and reports NOT_SERVING while it drains on SIGTERM", async () => {
    const args = ["server/bin/tributary.mjs", "serve", "--data-dir", join(dir, "data"), "--port", "0"];
    args.push("--nats-url", nats.url, "--threads", "0", "--ui-port", "0", "--drain", "3");
    const child: ChildProcess = spawn(process.execPath, args, {
      cwd: ROOT,
      env: { ...process.env, TRIBUTARY_OPERATOR_TOKEN: OPERATOR_TOKEN, TRIBUTARY_LOG: "warn" },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr?.on("data", (b: Buffer) => {
      stderr += b.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    try {
      const address = await waitFor("the banner", () => /listening on (\S+)/.exec(stderr)?.[1], 30_000);
      const page = await waitFor("the page URL", () => /operator page: (\S+)/.exec(stderr)?.[1]);
      assert.equal(await healthOf(address, ""), "SERVING");
      assert.equal(await healthOf(address, "tributary.v1.ClientService"), "SERVING");
      assert.equal(await healthOf(address, "tributary.v1.OperatorService"), "SERVING");
      const healthz = await fetch(new URL("/healthz", page));
      assert.equal(healthz.status, 200);
      assert.deepEqual(await healthz.json(), { status: "serving" });
      const services = await reflectedServices(address);
      for (const s of [
        "tributary.v1.ClientService",
        "tributary.v1.OperatorService",
        "grpc.health.v1.Health",
      ]) {
        assert.ok(services.includes(s), `reflection lists ${s}: ${services.join(", ")}`);
      }

      child.kill("SIGTERM");
      await waitFor("draining", () => stderr.includes("draining"), 5_000);
      assert.equal(await healthOf(address, ""), "NOT_SERVING");
      assert.equal(await healthOf(address, "tributary.v1.ClientService"), "NOT_SERVING");
      const draining = await fetch(new URL("/healthz", page));
      assert.equal(draining.status, 503);
      assert.deepEqual(await draining.json(), { status: "not_serving" });
      assert.equal(await exited, 0);
    } finally {
      child.kill("SIGKILL");
    }
  });
});

describe("liveness: connected means a live stream or a recent call", { timeout: 60_000 }, () => {
  const TIMEOUT_MS = 600;
  let fx: Fixture;
  before(async () => {
    fx = await startFixture({
      clients: 3,
      minClients: 3,
      quorum: 3,
      livenessTimeoutMs: TIMEOUT_MS,
      ui: true,
    });
  });
  after(async () => {
    await fx.close();
  });

  /** Who GetStatus, the scheduler and the operator page each say is connected. */
  const views = async () => {
    const status: GetStatusResponse = await call(
      fx.operator.getStatus,
      fx.operator,
      create(GetStatusRequestSchema, {}),
      fx.operatorMd,
    );
    const res = await fetch(new URL("/api/federations", fx.service.ui!.url), {
      headers: { authorization: `Bearer ${OPERATOR_TOKEN}` },
    });
    const page = (await res.json()) as {
      federations: { id: string; clients: { id: string; connected: boolean }[] }[];
    };
    const onPage = page.federations.find((f) => f.id === fx.federationId)?.clients ?? [];
    return {
      status: status.connectedClients
        .filter((c) => c.federationId === fx.federationId)
        .map((c) => c.clientId)
        .sort(),
      scheduler: fx.service.coordinator.connected(fx.federationId).sort(),
      page: onPage
        .filter((c) => c.connected)
        .map((c) => c.id)
        .sort(),
    };
  };
  const agreeOn = async (ids: string[]) => {
    const v = await views();
    assert.deepEqual(v, { status: ids, scheduler: ids, page: ids });
  };

  it("a client that joined and died leaves after the timeout; GetStatus, scheduler and page agree", async () => {
    const [c1] = fx.clients;
    const joined: JoinResponse = await call(
      fx.client.join,
      fx.client,
      create(JoinRequestSchema, { federationId: fx.federationId }),
      bearer(c1.token),
    );
    assert.equal(
      Number(joined.livenessTimeout?.seconds ?? 0) * 1000 + (joined.livenessTimeout?.nanos ?? 0) / 1e6,
      TIMEOUT_MS,
    );
    await agreeOn([c1.id]);
    await waitFor("client-1 to leave", async () => (await views()).scheduler.length === 0, 5_000);
    await agreeOn([]);
  });

  it("heartbeats keep a client without a stream connected; a stream keeps it connected past the timeout", async () => {
    const [, c2, c3] = fx.clients;
    const beat = (): Promise<HeartbeatResponse> =>
      call(
        fx.client.heartbeat,
        fx.client,
        create(HeartbeatRequestSchema, { federationId: fx.federationId }),
        bearer(c2.token),
      );
    await beat();
    const watch = fx.client.watchRounds(
      create(WatchRoundsRequestSchema, { federationId: fx.federationId }),
      bearer(c3.token),
    );
    watch.on("error", () => {});
    try {
      for (let i = 0; i < 6; i++) {
        await new Promise((r) => setTimeout(r, TIMEOUT_MS / 3));
        await beat();
      }
      // 2 × the timeout later: c2 by heartbeats, c3 by its stream.
      await agreeOn([c2.id, c3.id]);
    } finally {
      watch.cancel();
    }
    await waitFor("both to leave", async () => (await views()).scheduler.length === 0, 5_000);
    await agreeOn([]);
  });
});
