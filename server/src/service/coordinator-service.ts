/**
 * The whole coordinator process, assembled: file store, merge pool, NATS
 * (an external server, or a local `nats-server` started and supervised when
 * none is configured), the publisher, the coordinator and its gRPC endpoint.
 * `tributary serve` and the integration tests both start it through here.
 */
import { readFile, writeFile } from "node:fs/promises";
import { availableParallelism, hostname } from "node:os";
import { join } from "node:path";
import { installDecompositions } from "../compute/lapack.ts";
import { createMergePool } from "../compute/merge-pool.ts";
import { createContentCheckPool } from "../coordinator/content-check-pool.ts";
import { type Coordinator, createCoordinator } from "../coordinator/coordinator.ts";
import type { Leadership } from "../core/leadership.ts";
import type { Log } from "../core/log.ts";
import type { MergeRunner } from "../core/merge-runner.ts";
import type { Presence } from "../core/presence.ts";
import type { ResultPublisher } from "../core/publisher.ts";
import type { CoordinatorStore } from "../core/store.ts";
import type { Telemetry } from "../core/telemetry.ts";
import { newToken, tokenDigest } from "../core/tokens.ts";
import { startRemoteMergeRunner } from "../merge-workers/remote-runner.ts";
import { type OperatorUi, startOperatorUi } from "../operator-ui/operator-ui.ts";
import { createFileStore } from "../store/file-store.ts";
import { createJetStreamStore } from "../store-jetstream/jetstream-store.ts";
import { startKvLeadership } from "../store-jetstream/kv-leadership.ts";
import { startKvPresence } from "../store-jetstream/kv-presence.ts";
import { instrumentPublisher, instrumentStore } from "../telemetry/instrumented.ts";
import { pinoLog } from "../telemetry/pino-log.ts";
import { createTelemetry } from "../telemetry/telemetry.ts";
import type { ClientStreamLimits } from "../transport/grpc/client-service.ts";
import { type GrpcEndpoint, startGrpcServer, type TlsFiles } from "../transport/grpc/server.ts";
import type { UploadFairness } from "../transport/grpc/upload-fairness.ts";

export { DEFAULT_UPLOAD_FAIRNESS, type UploadFairness } from "../transport/grpc/upload-fairness.ts";

import { type LocalNats, startLocalNats } from "../transport/nats/nats-supervisor.ts";
import { createNatsPublisher } from "../transport/nats/publisher.ts";

/** Configuration of a coordinator process (every field has an embedded default). */
export interface ServiceConfig {
  readonly dataDir: string;
  readonly host?: string;
  /** gRPC port (default 7070; 0 = any free port). */
  readonly port?: number;
  /** NATS server URL(s); absent = start a local nats-server under `dataDir`. */
  readonly natsUrl?: string;
  /** Client port of the local nats-server (default 4222, or a free one). */
  readonly localNatsPort?: number;
  /** Operator token; absent = read or create `<dataDir>/operator.token`. */
  readonly operatorToken?: string;
  readonly tls?: TlsFiles;
  /** Merge worker threads (default: one per core). */
  readonly threads?: number;
  /** Threads checking accepted updates' content (default: one per core; 0 = on the main thread). */
  readonly checkThreads?: number;
  /** Retry interval for announcing results when NATS is down (ms). */
  readonly publishRetryMs?: number;
  /** How long a client without a `WatchRounds` stream counts as connected after its last call (default 60 s). */
  readonly livenessTimeoutMs?: number;
  /** An upload stream that sends nothing for this long is ended, its bytes kept for a resume (default 60 s). */
  readonly uploadIdleMs?: number;
  /**
   * Upload streams read at once, all clients together (default 32): later
   * ones wait their turn unread, held back by HTTP/2 flow control, so memory
   * stays flat however many clients upload at once.
   */
  readonly maxActiveUploads?: number;
  /**
   * Fair turns between uploads: an upload holding a turn while others wait
   * must send at least a minimum rate, and none waits longer than a bound
   * (default 64 KiB/s over 10 s, 120 s).
   */
  readonly uploadFairness?: UploadFairness;
  /** Streams one client may have open at once, by kind (defaults: 2 uploads, 4 downloads, 4 watches). */
  readonly clientStreams?: ClientStreamLimits;
  /** A gRPC connection with no call in flight for this long is closed (default 5 min). */
  readonly maxConnectionIdleMs?: number;
  readonly log?: Log;
  /**
   * The durable store, given the data directory (default: the file store
   * there). A wrapper of the file store, say, or another backend.
   */
  readonly store?: (dataDir: string) => CoordinatorStore;
  /**
   * Keep the store on the JetStream cluster at `natsUrl` (the local
   * nats-server when absent) instead of the data directory, which then holds
   * only a cache of verified copies and the operator token.
   */
  readonly jetstreamStore?: {
    readonly replicas: number;
    /** This coordinator's id among those sharing the store (default: host name and pid). */
    readonly coordinatorId?: string;
    /** How long a federation's leader lease lasts unrenewed, in ms (default 6 s): the bound on fail-over. */
    readonly leaseMs?: number;
    /** `host:port` other coordinators name when they send operators here. */
    readonly advertise?: string;
  };
  /** Spans and metrics (default: on the global OpenTelemetry API, a no-op unless an SDK was started). */
  readonly telemetry?: Telemetry;
  /**
   * The operator page (`operator-ui/`): host (default 127.0.0.1), port (default 7071; 0 = any free port)
   * and the host names it answers to; absent = not served. It uses HTTPS with `tls`'s certificate.
   */
  readonly ui?: { readonly host?: string; readonly port?: number; readonly allowedHosts?: readonly string[] };
}

/** A running coordinator process. */
export interface RunningService {
  readonly coordinator: Coordinator;
  readonly endpoint: GrpcEndpoint;
  /** The NATS URL the results are announced on. */
  readonly natsUrl: string;
  /** Where the operator token is (absent when it was passed in). */
  readonly operatorTokenFile?: string;
  readonly operatorToken: string;
  /** The operator page, when `config.ui` asked for it. */
  readonly ui?: OperatorUi;
  /**
   * Starts draining: health (gRPC `grpc.health.v1` and the page's `/healthz`)
   * reports NOT_SERVING for `ms` while calls go on being served, so load
   * balancers stop sending new ones; then resolves (call `close()` next).
   */
  drain(ms: number): Promise<void>;
  close(): Promise<void>;
}

/** The content-check threads' module, with native float64 products (compiled, or from source). */
function checkThreadModule(): URL {
  const fromSource = import.meta.url.endsWith(".ts");
  return new URL(fromSource ? "./content-check-blas.ts" : "./content-check-blas.js", import.meta.url);
}

/** Content-check threads by default: one per core (they run while uploads wait on the network). */
function defaultCheckThreads(): number {
  return Math.max(1, availableParallelism());
}

/**
 * The server URLs of a comma-separated `--nats-url`.
 *
 * @example
 * natsServers("nats://n1:4222, nats://n2:4222"); // ["nats://n1:4222", "nats://n2:4222"]
 */
export function natsServers(natsUrl: string): string[] {
  return natsUrl
    .split(",")
    .map((u) => u.trim())
    .filter((u) => u !== "");
}

async function operatorToken(dataDir: string, given?: string): Promise<{ token: string; file?: string }> {
  if (given !== undefined && given !== "") return { token: given };
  const file = join(dataDir, "operator.token");
  try {
    const token = (await readFile(file, "utf8")).trim();
    if (token !== "") return { token, file };
  } catch {
    // First start: create it below.
  }
  const token = newToken();
  await writeFile(file, `${token}\n`, { mode: 0o600 });
  return { token, file };
}

/**
 * Starts every part, in dependency order; on failure, stops what started.
 *
 * @example
 * const svc = await startService({ dataDir: "data/coordinator", port: 7070 });
 */
export async function startService(config: ServiceConfig): Promise<RunningService> {
  const log = config.log ?? pinoLog({ name: "tributary" });
  const cleanups: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const fn of cleanups.splice(0).reverse()) await fn().catch(() => {});
  };
  const telemetry = config.telemetry ?? createTelemetry();
  cleanups.push(async () => telemetry.close());
  try {
    const pool: MergeRunner = await createMergePool({ threads: config.threads });
    cleanups.push(() => pool.close());
    // Intake's float64 norms run on this thread: give it LAPACK too.
    await installDecompositions();
    log.info("tensor backend", {
      backend: pool.backend.name,
      provider: pool.backend.provider,
      linalg: pool.backend.linalg,
      threads: pool.threads,
      skipped: pool.backend.skipped,
    });
    let natsUrl = config.natsUrl;
    let local: LocalNats | undefined;
    if (natsUrl === undefined || natsUrl === "") {
      local = await startLocalNats({ dataDir: config.dataDir, port: config.localNatsPort, log });
      cleanups.push(() => local!.close());
      natsUrl = local.url;
      log.info("started local nats-server", { url: natsUrl });
    }
    const jetstreamStore =
      config.store === undefined && config.jetstreamStore !== undefined
        ? createJetStreamStore({
            servers: natsServers(natsUrl),
            replicas: config.jetstreamStore.replicas,
            cacheDir: join(config.dataDir, "cache"),
            log,
          })
        : undefined;
    const store = instrumentStore(
      config.store?.(config.dataDir) ?? jetstreamStore ?? createFileStore(config.dataDir, { log }),
      telemetry,
    );
    cleanups.push(() => store.close());
    const publisher: ResultPublisher = instrumentPublisher(
      createNatsPublisher({
        servers: natsServers(natsUrl),
        log,
        ...(config.jetstreamStore !== undefined
          ? { replicas: config.jetstreamStore.replicas, eager: true }
          : {}),
      }),
      telemetry,
    );
    cleanups.push(() => publisher.close());
    let leadership: Leadership | undefined;
    if (config.jetstreamStore !== undefined) {
      const js = config.jetstreamStore;
      leadership = await startKvLeadership({
        servers: natsServers(natsUrl),
        coordinatorId: js.coordinatorId ?? `${hostname()}-${process.pid}`,
        replicas: js.replicas,
        ...(js.leaseMs !== undefined ? { leaseMs: js.leaseMs } : {}),
        ...(js.advertise !== undefined ? { address: js.advertise } : {}),
        log,
      });
      const held = leadership;
      cleanups.push(() => held.close());
      log.info("campaigning for the federations' leases", {
        coordinator: leadership.coordinatorId,
        leaseMs: leadership.leaseMs,
      });
    }
    // On the JetStream store, modules go to merge workers whenever any is attached.
    let runner: MergeRunner = pool;
    if (leadership !== undefined && jetstreamStore !== undefined && config.jetstreamStore !== undefined) {
      const remote = await startRemoteMergeRunner({
        servers: natsServers(natsUrl),
        replicas: config.jetstreamStore.replicas,
        coordinatorId: leadership.coordinatorId,
        local: pool,
        locate: (path) => jetstreamStore.objectAt(path),
        log,
      });
      cleanups.push(() => remote.close());
      runner = remote;
    }
    let presence: Presence | undefined;
    if (leadership !== undefined && config.jetstreamStore !== undefined) {
      presence = await startKvPresence({
        servers: natsServers(natsUrl),
        coordinatorId: leadership.coordinatorId,
        ttlMs: config.livenessTimeoutMs ?? 60_000,
        replicas: config.jetstreamStore.replicas,
        log,
      });
      const shared = presence;
      cleanups.push(() => shared.close());
    }
    const coordinator = createCoordinator({
      // Intake's content checks beside the main thread, which keeps reading uploads.
      contentChecker: createContentCheckPool(
        config.checkThreads ?? defaultCheckThreads(),
        checkThreadModule(),
      ),
      ...(leadership !== undefined ? { leadership } : {}),
      ...(presence !== undefined ? { presence } : {}),
      store,
      pool: runner,
      publisher,
      log,
      telemetry,
      ...(config.publishRetryMs !== undefined ? { publishRetryMs: config.publishRetryMs } : {}),
    });
    await coordinator.start();
    cleanups.push(() => coordinator.close());
    const op = await operatorToken(config.dataDir, config.operatorToken);
    const endpoint = await startGrpcServer({
      coordinator,
      operatorDigest: tokenDigest(op.token),
      host: config.host,
      port: config.port ?? 7070,
      ...(config.tls !== undefined ? { tls: config.tls } : {}),
      ...(config.livenessTimeoutMs !== undefined ? { livenessTimeoutMs: config.livenessTimeoutMs } : {}),
      ...(config.uploadIdleMs !== undefined ? { uploadIdleMs: config.uploadIdleMs } : {}),
      ...(config.maxActiveUploads !== undefined ? { maxActiveUploads: config.maxActiveUploads } : {}),
      ...(config.uploadFairness !== undefined ? { uploadFairness: config.uploadFairness } : {}),
      ...(config.maxConnectionIdleMs !== undefined
        ? { maxConnectionIdleMs: config.maxConnectionIdleMs }
        : {}),
      ...(config.clientStreams !== undefined ? { clientStreams: config.clientStreams } : {}),
      log,
    });
    cleanups.push(() => endpoint.close());
    // After the gRPC endpoint, so closed before it.
    let ui: OperatorUi | undefined;
    if (config.ui !== undefined) {
      ui = await startOperatorUi({
        coordinator,
        operatorDigest: tokenDigest(op.token),
        ...config.ui,
        log,
        serving: () => endpoint.health.serving(),
        ...(config.tls !== undefined ? { tls: { cert: config.tls.cert, key: config.tls.key } } : {}),
      });
      cleanups.push(() => ui!.close());
    }
    return {
      coordinator,
      endpoint,
      natsUrl,
      operatorToken: op.token,
      ...(op.file !== undefined ? { operatorTokenFile: op.file } : {}),
      ...(ui !== undefined ? { ui } : {}),
      async drain(ms) {
        endpoint.health.setServing(false);
        log.info("draining: health reports NOT_SERVING", { ms });
        await new Promise((resolve) => setTimeout(resolve, ms));
      },
      close: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
