/**
 * `tributary serve` (`npm start`): runs the coordinator with embedded
 * defaults — data under `data/coordinator` in the working directory, gRPC on
 * 127.0.0.1:7070, and a local nats-server it starts and supervises unless
 * `--nats-url` / `TRIBUTARY_NATS_URL` names one.
 */

import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { redactCredentials } from "@tributary/client/nats";
import { DEFAULT_UPLOAD_FAIRNESS, startService } from "../service/coordinator-service.ts";
import { pinoLog } from "../telemetry/pino-log.ts";
import { DEFAULT_METRICS_PORT, startServeTelemetry } from "../telemetry/serve-telemetry.ts";
import { integerOption, parseFlags, UsageError } from "./args.ts";
import type { CliIo } from "./io.ts";

/** The default data directory: `data/coordinator` under the working directory. */
export const DEFAULT_DATA_DIR = join("data", "coordinator");

/** Help text of `tributary serve`. */
export const SERVE_USAGE = `Usage: tributary serve [options]

Runs the Tributary coordinator.

Options (environment variable in brackets):
  --data-dir DIR        journal, updates and merged adapters [TRIBUTARY_DATA_DIR]
                        (default: data/coordinator in the working directory)
  --host HOST           gRPC listen address (default 127.0.0.1) [TRIBUTARY_HOST]
  --port N              gRPC port (default 7070; 0 = any free port) [TRIBUTARY_PORT]
  --nats-url URLS       NATS server(s) for announcements, comma-separated (one
                        cluster) [TRIBUTARY_NATS_URL]; when absent a local
                        nats-server is started under the data dir
  --store KIND          where the journal, updates and merged adapters live:
                        "file" (the data dir; default) or "jetstream" (streams
                        and an object store on the --nats-url cluster; the data
                        dir keeps a cache) [TRIBUTARY_STORE]
  --replicas N          replicas of the JetStream store's streams and bucket
                        (default 1; 3 on a 3-node cluster) [TRIBUTARY_REPLICAS]
  --coordinator-id ID   this coordinator's name among several on one JetStream
                        store (default: host name and pid) [TRIBUTARY_COORDINATOR_ID]
  --lease-ttl S         seconds a federation's leader lease lasts unrenewed: the
                        bound on fail-over to another coordinator (default 6)
                        [TRIBUTARY_LEASE_TTL]
  --advertise HOST:PORT where other coordinators send operators and clients
                        to reach this one [TRIBUTARY_ADVERTISE]
  --tls-cert FILE       PEM certificate chain: serve gRPC over TLS
  --tls-key FILE        PEM private key of --tls-cert
  --tls-client-ca FILE  mutual TLS: require client certificates signed by this CA;
                        a certificate's subject CN is the client id (a token, if
                        sent too, must be that client's) [TRIBUTARY_TLS_CLIENT_CA]
  --threads N           merge worker threads (default: one per core)
  --liveness-timeout S  seconds a client without a WatchRounds stream counts as
                        connected after its last call (default 60)
                        [TRIBUTARY_LIVENESS_TIMEOUT]
  --upload-idle-timeout S  seconds an upload may send nothing before it is ended
                        (its bytes kept for a resume; default 60)
                        [TRIBUTARY_UPLOAD_IDLE_TIMEOUT]
  --max-active-uploads N  upload streams read at once, all clients together;
                        later ones wait their turn unread (default 32)
                        [TRIBUTARY_MAX_ACTIVE_UPLOADS]
  --min-upload-rate K   KiB/s an upload holding a turn must send, over 10 s,
                        while others wait; below it, it is deferred
                        (UPLOAD_DEFERRED, its bytes kept; default 64; 0 = no
                        minimum) [TRIBUTARY_MIN_UPLOAD_RATE]
  --max-upload-wait S   seconds an upload may wait for a turn before it is
                        deferred (default 120) [TRIBUTARY_MAX_UPLOAD_WAIT]
  --max-connection-idle S  seconds a gRPC connection with no call in flight
                        stays open (default 300) [TRIBUTARY_MAX_CONNECTION_IDLE]
  --client-uploads N    upload streams one client may have open at once
                        (default 2) [TRIBUTARY_CLIENT_UPLOADS]
  --client-downloads N  FetchAdapter streams one client may have open at once
                        (default 4) [TRIBUTARY_CLIENT_DOWNLOADS]
  --client-watches N    WatchRounds streams one client may have open at once
                        (default 4) [TRIBUTARY_CLIENT_WATCHES]
  --drain S             on SIGTERM, seconds health reports NOT_SERVING (gRPC
                        grpc.health.v1 and /healthz) before shutting down
                        (default 5; SIGINT shuts down at once) [TRIBUTARY_DRAIN]
  --metrics-port N      Prometheus scrape endpoint /metrics (default 9464; 0 or
                        "off" = none) [TRIBUTARY_METRICS_PORT]; needs telemetry:
                        node --import ./server/telemetry.mjs (as npm start does)
  --metrics-host HOST   its listen address (default 127.0.0.1) [TRIBUTARY_METRICS_HOST]
  --ui-port N           operator page (read-only web UI) port (default 7071;
                        0 = any free port; "off" = no page) [TRIBUTARY_UI_PORT]
  --ui-host HOST        operator page listen address (default 127.0.0.1)
                        [TRIBUTARY_UI_HOST]; HTTPS with --tls-cert/--tls-key
  --ui-allowed-hosts H  comma-separated host names the page answers to (default
                        localhost, 127.0.0.1, ::1, this machine's name and the
                        --ui-host); others get 421 [TRIBUTARY_UI_ALLOWED_HOSTS]

The operator token is read from TRIBUTARY_OPERATOR_TOKEN, else from
<data-dir>/operator.token (created on first start, mode 0600). The operator
page asks for the same token (login form, or "Authorization: Bearer <token>").`;

/** Runs `tributary serve` until SIGINT/SIGTERM; returns the exit code. */
export async function runServe(argv: readonly string[], io: CliIo): Promise<number> {
  const flags = parseFlags(argv, [
    "data-dir",
    "host",
    "port",
    "nats-url",
    "store",
    "replicas",
    "coordinator-id",
    "lease-ttl",
    "advertise",
    "liveness-timeout",
    "upload-idle-timeout",
    "max-active-uploads",
    "min-upload-rate",
    "max-upload-wait",
    "max-connection-idle",
    "client-uploads",
    "client-downloads",
    "client-watches",
    "drain",
    "tls-cert",
    "tls-key",
    "tls-client-ca",
    "threads",
    "metrics-port",
    "metrics-host",
    "ui-port",
    "ui-host",
    "ui-allowed-hosts",
  ]);
  if (flags.help) {
    io.out(SERVE_USAGE);
    return 0;
  }
  const str = (k: string, env: string) => flags.value(k, env);
  const certFile = flags.value("tls-cert");
  const keyFile = flags.value("tls-key");
  if ((certFile === undefined) !== (keyFile === undefined))
    throw new UsageError("--tls-cert and --tls-key go together");
  const clientCaFile = str("tls-client-ca", "TRIBUTARY_TLS_CLIENT_CA");
  if (clientCaFile !== undefined && certFile === undefined) {
    throw new UsageError("--tls-client-ca needs --tls-cert and --tls-key (mutual TLS is TLS first)");
  }
  const tls =
    certFile !== undefined && keyFile !== undefined
      ? {
          cert: await readFile(certFile),
          key: await readFile(keyFile),
          ...(clientCaFile !== undefined ? { clientCa: await readFile(clientCaFile) } : {}),
        }
      : undefined;
  const uiPort = str("ui-port", "TRIBUTARY_UI_PORT");
  const ui =
    uiPort === "off"
      ? undefined
      : {
          host: str("ui-host", "TRIBUTARY_UI_HOST") ?? "127.0.0.1",
          port: integerOption("ui-port", uiPort) ?? 7071,
          ...(str("ui-allowed-hosts", "TRIBUTARY_UI_ALLOWED_HOSTS") !== undefined
            ? {
                allowedHosts: str("ui-allowed-hosts", "TRIBUTARY_UI_ALLOWED_HOSTS")!
                  .split(",")
                  .map((h) => h.trim())
                  .filter((h) => h !== ""),
              }
            : {}),
        };
  const dataDir = resolve(str("data-dir", "TRIBUTARY_DATA_DIR") ?? DEFAULT_DATA_DIR);
  const liveness = integerOption("liveness-timeout", str("liveness-timeout", "TRIBUTARY_LIVENESS_TIMEOUT"));
  const drainSeconds = integerOption("drain", str("drain", "TRIBUTARY_DRAIN")) ?? 5;
  const uploadIdle = integerOption(
    "upload-idle-timeout",
    str("upload-idle-timeout", "TRIBUTARY_UPLOAD_IDLE_TIMEOUT"),
  );
  /** A flag (or its variable) that must be at least `min`, when given. */
  const atLeast = (min: number, flag: string, env: string): number | undefined => {
    const n = integerOption(flag, str(flag, env));
    if (n !== undefined && n < min) {
      throw new UsageError(
        `--${flag} expects ${min === 1 ? "a positive integer" : `an integer ≥ ${min}`}, got ${n}`,
      );
    }
    return n;
  };
  const maxActiveUploads = atLeast(1, "max-active-uploads", "TRIBUTARY_MAX_ACTIVE_UPLOADS");
  const minRate = atLeast(0, "min-upload-rate", "TRIBUTARY_MIN_UPLOAD_RATE");
  const maxWait = atLeast(1, "max-upload-wait", "TRIBUTARY_MAX_UPLOAD_WAIT");
  const uploadFairness = {
    ...DEFAULT_UPLOAD_FAIRNESS,
    ...(minRate !== undefined ? { minBytesPerSec: minRate * 1024 } : {}),
    ...(maxWait !== undefined ? { maxWaitMs: maxWait * 1000 } : {}),
  };
  const idle = atLeast(1, "max-connection-idle", "TRIBUTARY_MAX_CONNECTION_IDLE");
  const clientStreams = {
    uploads: atLeast(1, "client-uploads", "TRIBUTARY_CLIENT_UPLOADS"),
    downloads: atLeast(1, "client-downloads", "TRIBUTARY_CLIENT_DOWNLOADS"),
    watches: atLeast(1, "client-watches", "TRIBUTARY_CLIENT_WATCHES"),
  };
  const storeKind = str("store", "TRIBUTARY_STORE") ?? "file";
  if (storeKind !== "file" && storeKind !== "jetstream") {
    throw new UsageError(`--store expects "file" or "jetstream", got ${JSON.stringify(storeKind)}`);
  }
  const replicas = atLeast(1, "replicas", "TRIBUTARY_REPLICAS");
  const leaseTtl = atLeast(1, "lease-ttl", "TRIBUTARY_LEASE_TTL");
  const coordinatorId = str("coordinator-id", "TRIBUTARY_COORDINATOR_ID");
  const advertise = str("advertise", "TRIBUTARY_ADVERTISE");
  for (const [flag, given] of [
    ["--replicas", replicas],
    ["--lease-ttl", leaseTtl],
    ["--coordinator-id", coordinatorId],
    ["--advertise", advertise],
  ] as const) {
    if (given !== undefined && storeKind !== "jetstream")
      throw new UsageError(`${flag} applies to --store jetstream`);
  }
  const log = pinoLog({ name: "tributary" });
  const metricsPort = str("metrics-port", "TRIBUTARY_METRICS_PORT");
  const telemetry = await startServeTelemetry({
    metricsPort:
      metricsPort === "off" ? 0 : (integerOption("metrics-port", metricsPort) ?? DEFAULT_METRICS_PORT),
    metricsHost: str("metrics-host", "TRIBUTARY_METRICS_HOST") ?? "127.0.0.1",
    log,
  });
  const svc = await startService({
    dataDir,
    host: str("host", "TRIBUTARY_HOST") ?? "127.0.0.1",
    port: integerOption("port", str("port", "TRIBUTARY_PORT")) ?? 7070,
    natsUrl: str("nats-url", "TRIBUTARY_NATS_URL"),
    operatorToken: process.env.TRIBUTARY_OPERATOR_TOKEN,
    ...(tls !== undefined ? { tls } : {}),
    threads: integerOption("threads", flags.value("threads")),
    ...(liveness !== undefined ? { livenessTimeoutMs: liveness * 1000 } : {}),
    ...(uploadIdle !== undefined ? { uploadIdleMs: uploadIdle * 1000 } : {}),
    ...(maxActiveUploads !== undefined ? { maxActiveUploads } : {}),
    uploadFairness,
    ...(idle !== undefined ? { maxConnectionIdleMs: idle * 1000 } : {}),
    clientStreams,
    ...(storeKind === "jetstream"
      ? {
          jetstreamStore: {
            replicas: replicas ?? 1,
            ...(coordinatorId !== undefined ? { coordinatorId } : {}),
            ...(leaseTtl !== undefined ? { leaseMs: leaseTtl * 1000 } : {}),
            ...(advertise !== undefined ? { advertise } : {}),
          },
        }
      : {}),
    log,
    ...(ui !== undefined ? { ui } : {}),
  });
  io.err(
    `tributary coordinator listening on ${svc.endpoint.address}${tls ? (tls.clientCa ? " (mutual TLS)" : " (TLS)") : ""}`,
  );
  io.err(
    `  data:   ${dataDir}${storeKind === "jetstream" ? ` (cache; the store is JetStream, ${replicas ?? 1} replica(s))` : ""}`,
  );
  io.err(`  nats:   ${redactCredentials(svc.natsUrl)}`);
  if (telemetry.metricsUrl !== undefined) io.err(`  metrics: ${telemetry.metricsUrl}`);
  if (svc.ui !== undefined) io.err(`  operator page: ${svc.ui.url}`);
  io.err(
    `  operator token: ${svc.operatorTokenFile ?? "from TRIBUTARY_OPERATOR_TOKEN"} (send as "authorization: Bearer <token>")`,
  );
  const signal = await new Promise<NodeJS.Signals>((done) => {
    process.once("SIGINT", done);
    process.once("SIGTERM", done);
  });
  if (signal === "SIGTERM" && drainSeconds > 0) {
    io.err(`draining for ${drainSeconds} s (health: NOT_SERVING)`);
    await svc.drain(drainSeconds * 1000);
  }
  io.err("shutting down");
  await svc.close();
  await telemetry.close();
  return 0;
}
