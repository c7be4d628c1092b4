/**
 * The coordinator's gRPC endpoint: `ClientService` and `OperatorService` on
 * one port with health and reflection, TLS when a certificate is configured,
 * message limits sized for 1 MiB chunks, malformed requests refused.
 */
import * as grpc from "@grpc/grpc-js";
import { addService, ClientService, GRPC_SERVER_OPTIONS, OperatorService } from "@tributary/protocol";
import type { Coordinator, TokenHolder } from "../../coordinator/coordinator.ts";
import type { Log } from "../../core/log.ts";
import type { ClientDirectory } from "./auth.ts";
import { type ClientStreamLimits, clientServiceHandlers } from "./client-service.ts";
import { type ConnectionTracker, createConnectionTracker } from "./connections.ts";
import { addHealthAndReflection, type HealthControl } from "./discovery.ts";
import { CLOSE_GRACE_MS, listenGrpc } from "./listener.ts";
import { operatorServiceHandlers } from "./operator-service.ts";
import type { UploadFairness } from "./upload-fairness.ts";

/** PEM material for TLS on the gRPC port. */
export interface TlsFiles {
  readonly cert: Buffer;
  readonly key: Buffer;
  /**
   * CA certificate(s) of client certificates: when set, every client must
   * present a certificate signed by it (mutual TLS), and its subject CN is the
   * client's id (a token, if sent too, must belong to the same client).
   */
  readonly clientCa?: Buffer;
}

/** What `startGrpcServer` needs. */
export interface GrpcServerOptions {
  readonly coordinator: Coordinator;
  /** Hex sha256 of the operator token. */
  readonly operatorDigest: string;
  readonly host?: string;
  /** 0 = any free port. */
  readonly port?: number;
  readonly tls?: TlsFiles;
  /** How long a client without a `WatchRounds` stream counts as connected after its last call (default 60 s). */
  readonly livenessTimeoutMs?: number;
  /** An upload stream that sends nothing for this long is ended (default 60 s). */
  readonly uploadIdleMs?: number;
  /** Upload streams read at once, all clients together (default 32); later ones wait unread. */
  readonly maxActiveUploads?: number;
  /** Streams one client may have open at once, by kind (defaults: 2 uploads, 4 downloads, 4 watches). */
  readonly clientStreams?: ClientStreamLimits;
  /** A connection with no call in flight for this long is closed (default {@link MAX_CONNECTION_IDLE_MS}). */
  readonly maxConnectionIdleMs?: number;
  /** Fair turns between uploads (default: `DEFAULT_UPLOAD_FAIRNESS`). */
  readonly uploadFairness?: UploadFairness;
  readonly log: Log;
}

/** A running gRPC endpoint. */
export interface GrpcEndpoint {
  readonly port: number;
  /** `host:port` for clients. */
  readonly address: string;
  readonly connections: ConnectionTracker;
  /** TCP connections open on the port now (whatever they carry). */
  readonly openSockets: number;
  /** What `grpc.health.v1.Health` reports. */
  readonly health: HealthControl;
  /** Stops accepting calls and waits for running ones (forcing after `graceMs`). */
  close(graceMs?: number): Promise<void>;
}

/** Default {@link GrpcServerOptions.maxConnectionIdleMs}: 5 minutes. */
export const MAX_CONNECTION_IDLE_MS = 300_000;

/**
 * A client directory over the coordinator's enrolled clients, rebuilt on
 * first use after a `client-enrolled` event (the journal says who may call).
 */
function directoryOf(coordinator: Coordinator): ClientDirectory & { stop(): void } {
  let stale = true;
  let byDigest = new Map<string, TokenHolder>();
  let byId = new Map<string, TokenHolder>();
  const stop = coordinator.subscribe((event) => {
    if (event.type === "client-enrolled") stale = true;
  });
  const fresh = () => {
    if (!stale) return;
    stale = false;
    byDigest = coordinator.tokenDigests();
    byId = new Map();
    for (const { clientId, federations } of byDigest.values()) {
      const hit = byId.get(clientId) ?? { clientId, federations: new Set<string>() };
      for (const f of federations) hit.federations.add(f);
      byId.set(clientId, hit);
    }
  };
  return {
    byTokenDigest(digest) {
      fresh();
      return byDigest.get(digest);
    },
    byClientId(clientId) {
      fresh();
      return byId.get(clientId);
    },
    stop,
  };
}

/**
 * Starts serving.
 *
 * @example
 * const endpoint = await startGrpcServer({ coordinator, operatorDigest, port: 7070, log });
 */
export async function startGrpcServer(opts: GrpcServerOptions): Promise<GrpcEndpoint> {
  const idleMs = opts.maxConnectionIdleMs ?? MAX_CONNECTION_IDLE_MS;
  const server = new grpc.Server({
    ...GRPC_SERVER_OPTIONS,
    // A connection with no call in flight for this long is closed (HTTP/2
    // GOAWAY; clients reconnect on their next call), so idle connections
    // cannot pile up. A WatchRounds stream is a call in flight.
    "grpc.max_connection_idle_ms": idleMs,
  });
  const directory = directoryOf(opts.coordinator);
  const bookkeeping = (what: string, federationId: string, clientId: string) => (err: unknown) =>
    opts.log.warn(`${what} bookkeeping failed`, { federation: federationId, client: clientId, error: err });
  const connections = createConnectionTracker({
    ...(opts.livenessTimeoutMs !== undefined ? { timeoutMs: opts.livenessTimeoutMs } : {}),
    events: {
      connected: (f, c) => void opts.coordinator.clientConnected(f, c).catch(bookkeeping("connect", f, c)),
      gone: (f, c) => {
        opts.log.info("client gone (no stream, no call within the liveness timeout)", {
          federation: f,
          client: c,
        });
        void opts.coordinator.clientDisconnected(f, c).catch(bookkeeping("disconnect", f, c));
      },
    },
  });
  addService(
    server,
    ClientService,
    clientServiceHandlers({
      coordinator: opts.coordinator,
      directory,
      connections,
      log: opts.log,
      ...(opts.uploadIdleMs !== undefined ? { uploadIdleMs: opts.uploadIdleMs } : {}),
      ...(opts.maxActiveUploads !== undefined ? { maxActiveUploads: opts.maxActiveUploads } : {}),
      ...(opts.uploadFairness !== undefined ? { uploadFairness: opts.uploadFairness } : {}),
      ...(opts.clientStreams?.uploads !== undefined
        ? { maxConcurrentUploads: opts.clientStreams.uploads }
        : {}),
      ...(opts.clientStreams?.downloads !== undefined
        ? { maxConcurrentDownloads: opts.clientStreams.downloads }
        : {}),
      ...(opts.clientStreams?.watches !== undefined
        ? { maxConcurrentWatches: opts.clientStreams.watches }
        : {}),
    }),
  );
  addService(
    server,
    OperatorService,
    operatorServiceHandlers({
      coordinator: opts.coordinator,
      operatorDigest: opts.operatorDigest,
      connections,
      log: opts.log,
    }),
  );
  const health = addHealthAndReflection(server);
  const credentials =
    opts.tls === undefined
      ? grpc.ServerCredentials.createInsecure()
      : grpc.ServerCredentials.createSsl(
          opts.tls.clientCa ?? null,
          [{ cert_chain: opts.tls.cert, private_key: opts.tls.key }],
          opts.tls.clientCa !== undefined,
        );
  const host = opts.host ?? "127.0.0.1";
  const listener = await listenGrpc(server, credentials, {
    host,
    port: opts.port ?? 0,
    // A peer that does not close its side of a connection the coordinator
    // closed loses it after this long (no longer than the idle limit).
    closeGraceMs: Math.min(CLOSE_GRACE_MS, idleMs),
  });
  const port = listener.port;
  if (!listener.windowsRaised) {
    opts.log.warn(
      "uploads get Node's default 64 KiB HTTP/2 receive window: this grpc-js keeps its HTTP/2 servers where receive-windows.ts cannot find them",
    );
  }
  opts.log.info("gRPC listening", {
    host,
    port,
    tls: opts.tls !== undefined,
    mtls: opts.tls?.clientCa !== undefined,
  });
  return {
    port,
    address: `${host.includes(":") ? `[${host}]` : host}:${port}`,
    connections,
    health,
    get openSockets() {
      return listener.open;
    },
    close(graceMs = 2000) {
      connections.close();
      directory.stop();
      void listener.close();
      const stopped = new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      return stopped.then(() => listener.close({ destroy: true }));
    },
  };
}
