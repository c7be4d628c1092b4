/**
 * A running coordinator (in this process) with a real nats-server, a real
 * gRPC server on port 0 and a temp data dir, plus PEFT client adapters on
 * disk, for the integration tests.
 */
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import {
  type ClientService,
  CreateFederationRequestSchema,
  DeadlinePolicy,
  Dtype,
  EnrollClientRequestSchema,
  type EnrollClientResponse,
  FetchAdapterRequestSchema,
  type GrpcClient,
  JoinRequestSchema,
  ListRoundsRequestSchema,
  type ListRoundsResponse,
  ListUpdatesRequestSchema,
  type ListUpdatesResponse,
  type OperatorService,
} from "@tributary/protocol";
import { type Log, silentLog } from "../../server/src/core/log.ts";
import type { RoundRecord } from "../../server/src/core/model.ts";
import type { CoordinatorStore } from "../../server/src/core/store.ts";
import type { Telemetry } from "../../server/src/core/telemetry.ts";
import { llamaQV, writeSyntheticAdapter } from "../../server/src/peft/synthetic-adapter.ts";
import {
  type RunningService,
  startService,
  type UploadFairness,
} from "../../server/src/service/coordinator-service.ts";
import { waitFor } from "./expect.ts";
import { bearer, call, clientsFor, fetchAdapter, upload } from "./grpc-calls.ts";
import { startNatsServer, type TestNatsServer } from "./nats-server.ts";

/** Module shapes of the test federation (2 layers, hidden 64). */
export const MODULES = llamaQV(2, 64);

/** What a test federation looks like. */
export interface FederationSpec {
  readonly id?: string;
  readonly clients?: number;
  readonly method?: string;
  readonly rank?: number;
  readonly minClients?: number;
  readonly quorum?: number;
  readonly deadlineMs?: number;
  readonly waitAfterQuorumMs?: number;
  readonly failAtDeadline?: boolean;
  readonly maxUpdateBytes?: number;
  /** The coordinator's log (default: silent). */
  readonly log?: Log;
  /** The coordinator's store (default: the file store under the data directory). */
  readonly store?: (dataDir: string) => CoordinatorStore;
  /** The coordinator's telemetry (default: the global OpenTelemetry API). */
  readonly telemetry?: Telemetry;
  /** Serve the operator page too (on a free port): `fixture.service.ui`. */
  readonly ui?: boolean;
  /** The coordinator's liveness timeout (default 60 s). */
  readonly livenessTimeoutMs?: number;
  /** The coordinator's upload idle timeout (default 60 s). */
  readonly uploadIdleMs?: number;
  /** The coordinator's bound on uploads read at once (default 32). */
  readonly maxActiveUploads?: number;
  /** Fair turns between uploads (default: the coordinator's). */
  readonly uploadFairness?: UploadFairness;
  /** gRPC connections idle this long are closed (default: the coordinator's). */
  readonly maxConnectionIdleMs?: number;
  /** Per-client stream limits (default: the coordinator's). */
  readonly clientStreams?: {
    readonly uploads?: number;
    readonly downloads?: number;
    readonly watches?: number;
  };
  /** Buffered rounds (federation.proto `BufferedRounds`; `quorum` should equal its `size`). */
  readonly buffered?: {
    readonly size: number;
    readonly staleness?: string;
    readonly stalenessA?: number;
    readonly stalenessB?: number;
    readonly serverLr?: number;
    readonly maxStaleness?: number;
  };
  /** FLoRA's round option: clients fold each merged adapter into their base. */
  readonly foldIntoBase?: boolean;
  /** More fields of the federation's merge spec (federation.proto `MergeSpec`, e.g. KnOTS's `topK`). */
  readonly merge?: Readonly<Record<string, string | number | boolean>>;
  /** The merge spec's norm bound, as a multiple of the median client norm. */
  readonly normBoundMedianMultiple?: number;
  readonly normBoundAction?: "clip" | "reject";
  /** Central differential privacy (federation.proto `PrivacySpec`). */
  readonly privacy?: {
    readonly clipNorm: number;
    readonly noiseMultiplier: number;
    readonly delta: number;
    readonly epsilonBudget?: number;
    readonly reproducible?: boolean;
    readonly targetQuantile?: number;
    readonly clipLr?: number;
    readonly clippedCountStddev?: number;
  };
}

/** One enrolled client with its adapter on disk. */
export interface TestClient {
  readonly id: string;
  readonly token: string;
  readonly dir: string;
  readonly configJson: string;
  readonly bytes: Uint8Array;
}

/** Everything a test needs. */
export interface Fixture {
  readonly root: string;
  readonly dataDir: string;
  readonly nats: TestNatsServer;
  service: RunningService;
  readonly client: GrpcClient<typeof ClientService>;
  readonly operator: GrpcClient<typeof OperatorService>;
  readonly operatorMd: ReturnType<typeof bearer>;
  readonly operatorToken: string;
  readonly federationId: string;
  readonly clients: TestClient[];
  /** Joins every client (in order), which opens round 1 once enough are connected. */
  joinAll(): Promise<void>;
  /** Creates another federation on the same coordinator (its clients' adapters under `root/<id>/`). */
  addFederation(spec: FederationSpec): Promise<TestFederation>;
  /** Stops the coordinator (not NATS) and starts it again on the same data dir and port. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

/** Writes a client adapter and reads its files back. */
export async function clientAdapter(
  dir: string,
  seed: number,
  rank: number,
): Promise<{ configJson: string; bytes: Uint8Array }> {
  await writeSyntheticAdapter(dir, {
    modules: MODULES,
    rank,
    seed,
    dtype: seed % 2 === 0 ? "BF16" : "F32",
    baseModel: "synthetic/tiny-llama",
  });
  return {
    configJson: await readFile(join(dir, "adapter_config.json"), "utf8"),
    bytes: new Uint8Array(await readFile(join(dir, "adapter_model.safetensors"))),
  };
}

/** Operator token of every test coordinator. */
export const OPERATOR_TOKEN = "trb_test-operator-token-0123456789";

type Connections = ReturnType<typeof clientsFor>;

/** A federation created over gRPC, with its enrolled clients. */
export interface TestFederation {
  readonly federationId: string;
  readonly clients: TestClient[];
}

/**
 * Creates a federation over `OperatorService` and enrolls `spec.clients`
 * clients `client-1`, `client-2`, …, each with a synthetic adapter written
 * under `root/<federation>/<client>`.
 */
export async function createTestFederation(
  operator: Connections["operator"],
  root: string,
  spec: FederationSpec = {},
): Promise<TestFederation> {
  const operatorMd = bearer(OPERATOR_TOKEN);
  const federationId = spec.id ?? "fed-it";
  const n = spec.clients ?? 3;
  await call(
    operator.createFederation,
    operator,
    create(CreateFederationRequestSchema, {
      federationId,
      displayName: "integration test",
      schema: {
        baseModelId: "synthetic/tiny-llama",
        modules: MODULES.map((m) => ({ name: m.name, dIn: m.dIn, dOut: m.dOut, maxRank: 8 })),
        allowedDtypes: [Dtype.F32, Dtype.BF16],
      },
      merge: {
        method: spec.method ?? "from",
        rank: spec.rank ?? 4,
        ...(spec.normBoundMedianMultiple !== undefined
          ? { normBoundMedianMultiple: spec.normBoundMedianMultiple }
          : {}),
        ...(spec.normBoundAction !== undefined ? { normBoundAction: spec.normBoundAction } : {}),
        ...spec.merge,
      },
      policy: {
        minClients: spec.minClients ?? n,
        quorum: spec.quorum ?? n,
        waitAfterQuorum: durationFromMs(spec.waitAfterQuorumMs ?? 0),
        deadline: durationFromMs(spec.deadlineMs ?? 60_000),
        deadlinePolicy: spec.failAtDeadline ? DeadlinePolicy.FAIL_ROUND : DeadlinePolicy.EXTEND_ONCE,
        maxUpdateBytes: BigInt(spec.maxUpdateBytes ?? 0),
        ...(spec.buffered !== undefined ? { buffered: spec.buffered } : {}),
        ...(spec.foldIntoBase === true ? { foldIntoBase: true } : {}),
      },
      ...(spec.privacy !== undefined ? { privacy: spec.privacy } : {}),
    }),
    operatorMd,
  );
  const clients: TestClient[] = [];
  for (let i = 1; i <= n; i++) {
    const id = `client-${i}`;
    const res = (await call(
      operator.enrollClient,
      operator,
      create(EnrollClientRequestSchema, { federationId, clientId: id }),
      operatorMd,
    )) as EnrollClientResponse;
    const dir = join(root, federationId, id);
    const files = await clientAdapter(dir, i, i % 2 === 0 ? 8 : 4);
    clients.push({ id, token: res.token, dir, ...files });
  }
  return { federationId, clients };
}

/** Joins every client of `federation` (in order), which opens round 1 once enough are connected. */
export async function joinAll(client: Connections["client"], federation: TestFederation): Promise<void> {
  for (const c of federation.clients) {
    await call(
      client.join,
      client,
      create(JoinRequestSchema, { federationId: federation.federationId }),
      bearer(c.token),
    );
  }
}

/** Starts NATS, the coordinator, creates a federation and enrolls its clients. */
export async function startFixture(spec: FederationSpec = {}): Promise<Fixture> {
  const root = await mkdtemp(join(tmpdir(), "tributary-it-"));
  const dataDir = join(root, "data");
  const nats = await startNatsServer({ jetstream: true });
  const start = (port = 0) =>
    startService({
      dataDir,
      port,
      natsUrl: nats.url,
      operatorToken: OPERATOR_TOKEN,
      threads: 0,
      log: spec.log ?? silentLog,
      ...(spec.store !== undefined ? { store: spec.store } : {}),
      ...(spec.telemetry !== undefined ? { telemetry: spec.telemetry } : {}),
      publishRetryMs: 200,
      ...(spec.ui === true ? { ui: { port: 0 } } : {}),
      ...(spec.livenessTimeoutMs !== undefined ? { livenessTimeoutMs: spec.livenessTimeoutMs } : {}),
      ...(spec.uploadIdleMs !== undefined ? { uploadIdleMs: spec.uploadIdleMs } : {}),
      ...(spec.maxActiveUploads !== undefined ? { maxActiveUploads: spec.maxActiveUploads } : {}),
      ...(spec.uploadFairness !== undefined ? { uploadFairness: spec.uploadFairness } : {}),
      ...(spec.maxConnectionIdleMs !== undefined ? { maxConnectionIdleMs: spec.maxConnectionIdleMs } : {}),
      ...(spec.clientStreams !== undefined ? { clientStreams: spec.clientStreams } : {}),
    });
  let service = await start();
  const conn = clientsFor(service.endpoint.address);
  const operatorMd = bearer(OPERATOR_TOKEN);
  const { federationId, clients } = await createTestFederation(conn.operator, root, spec);
  const fixture: Fixture = {
    root,
    dataDir,
    nats,
    service,
    client: conn.client,
    operator: conn.operator,
    operatorMd,
    operatorToken: OPERATOR_TOKEN,
    federationId,
    clients,
    async joinAll() {
      await joinAll(conn.client, { federationId, clients });
    },
    addFederation: (extra) => createTestFederation(conn.operator, root, extra),
    async restart() {
      const port = fixture.service.endpoint.port;
      await fixture.service.close();
      service = await start(port);
      fixture.service = service;
    },
    async close() {
      conn.close();
      await fixture.service.close();
      await nats.close();
      await rm(root, { recursive: true, force: true });
    },
  };
  return fixture;
}

/** A client of {@link createBigFederation}: its token and multi-MiB adapter. */
export interface BigClient {
  readonly id: string;
  readonly token: string;
  readonly dir: string;
  readonly bytes: Uint8Array;
}

/**
 * Creates federation `federationId` on the fixture's coordinator whose adapters
 * span several 1 MiB chunks (`layers` layers — default 5 — of q/v at hidden
 * 1024, rank 64, F32: about 1 MiB per layer), and enrolls `ids`, each with its own adapter under
 * `root/<federation>/<id>`.
 */
export async function createBigFederation(
  fx: Pick<Fixture, "operator" | "root">,
  federationId: string,
  ids: readonly string[],
  seed = 7,
  layers = 5,
): Promise<BigClient[]> {
  const operatorMd = bearer(OPERATOR_TOKEN);
  const modules = llamaQV(layers, 1024);
  await call(
    fx.operator.createFederation,
    fx.operator,
    create(CreateFederationRequestSchema, {
      federationId,
      schema: {
        baseModelId: "synthetic/tiny-llama",
        modules: modules.map((m) => ({ ...m, maxRank: 64 })),
        allowedDtypes: [Dtype.F32],
      },
      merge: { method: "fedavg", rank: 64 },
      policy: { minClients: 2, quorum: 2, deadline: durationFromMs(120_000) },
    }),
    operatorMd,
  );
  const out: BigClient[] = [];
  for (const id of ids) {
    const res = (await call(
      fx.operator.enrollClient,
      fx.operator,
      create(EnrollClientRequestSchema, { federationId, clientId: id }),
      operatorMd,
    )) as EnrollClientResponse;
    const dir = join(fx.root, federationId, id);
    await writeSyntheticAdapter(dir, {
      modules,
      rank: 64,
      seed: seed + out.length,
      dtype: "F32",
      baseModel: "synthetic/tiny-llama",
    });
    out.push({
      id,
      token: res.token,
      dir,
      bytes: new Uint8Array(await readFile(join(dir, "adapter_model.safetensors"))),
    });
  }
  return out;
}

/** Uploads `c`'s adapter as its update of `round` of `federationId` (update id `u-<client id>`). */
export function submitUpdate(
  client: Connections["client"],
  federationId: string,
  c: Pick<TestClient, "id" | "token" | "configJson" | "bytes">,
  round = 1,
  samples?: number,
): ReturnType<typeof upload> {
  return upload(client, c.token, {
    federationId,
    round,
    clientId: c.id,
    updateId: `u-${c.id}`,
    ...(samples !== undefined ? { samples } : {}),
    configJson: c.configJson,
    bytes: c.bytes,
  });
}

/** The operator's `ListUpdates` of `round` of `federationId`. */
export async function listUpdates(
  fx: Pick<Fixture, "operator" | "operatorMd">,
  federationId: string,
  round = 1,
): Promise<ListUpdatesResponse> {
  return (await call(
    fx.operator.listUpdates,
    fx.operator,
    create(ListUpdatesRequestSchema, { federationId, round }),
    fx.operatorMd,
  )) as ListUpdatesResponse;
}

/** Submits every client's update to round 1 (each must be accepted) and waits until the round is published. */
export async function publishFirstRound(fx: Fixture): Promise<RoundRecord> {
  for (const c of fx.clients)
    assert.equal((await submitUpdate(fx.client, fx.federationId, c)).accepted, true);
  await waitFor(
    "round 1 published",
    () => fx.service.coordinator.rounds(fx.federationId)[0]?.round.state === "published",
  );
  return fx.service.coordinator.rounds(fx.federationId)[0].round;
}

/** Round `n` of `federationId` as the operator's `ListRounds` shows it (`undefined` before it opens). */
export async function roundOf(
  operator: Connections["operator"],
  federationId: string,
  n = 1,
): Promise<ListRoundsResponse["rounds"][number] | undefined> {
  const res = (await call(
    operator.listRounds,
    operator,
    create(ListRoundsRequestSchema, { federationId }),
    bearer(OPERATOR_TOKEN),
  )) as ListRoundsResponse;
  return res.rounds.find((r) => r.number === n);
}

/** Downloads the merged adapter of `round` of `federationId` as the client holding `token`. */
export function fetchRound(
  client: Connections["client"],
  token: string,
  federationId: string,
  round = 1,
): ReturnType<typeof fetchAdapter> {
  return fetchAdapter(
    client,
    token,
    create(FetchAdapterRequestSchema, { federationId, selector: { case: "round", value: round } }),
  );
}
