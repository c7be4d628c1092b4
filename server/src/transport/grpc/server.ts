/**
 * The coordinator's gRPC endpoint: `ClientService` and `OperatorService` on
 * one port, TLS when a certificate is configured, message limits sized for
 * 1 MiB chunks.
 */
import * as grpc from "@grpc/grpc-js";
import { addService, ClientService, GRPC_CHANNEL_OPTIONS, OperatorService } from "@tributary/protocol";
import type { Coordinator } from "../../coordinator/coordinator.ts";
import type { Log } from "../../core/log.ts";
import type { ClientDirectory } from "./auth.ts";
import { clientServiceHandlers } from "./client-service.ts";
import { type ConnectionTracker, createConnectionTracker } from "./connections.ts";
import { operatorServiceHandlers } from "./operator-service.ts";

/** PEM material for TLS on the gRPC port. */
export interface TlsFiles {
  readonly cert: Buffer;
  readonly key: Buffer;
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
  readonly log: Log;
}

/** A running gRPC endpoint. */
export interface GrpcEndpoint {
  readonly port: number;
  /** `host:port` for clients. */
  readonly address: string;
  readonly connections: ConnectionTracker;
  /** Stops accepting calls and waits for running ones (forcing after `graceMs`). */
  close(graceMs?: number): Promise<void>;
}

/** A client directory over the coordinator's enrolled clients, rebuilt when the journal grows. */
function directoryOf(coordinator: Coordinator): ClientDirectory {
  let seq = -1;
  let cache = new Map<string, { clientId: string; federations: Set<string> }>();
  return {
    byTokenDigest(digest) {
      const now = coordinator.store.state().lastSeq;
      if (now !== seq) {
        cache = coordinator.tokenDigests();
        seq = now;
      }
      return cache.get(digest);
    },
  };
}

/**
 * Starts serving.
 *
 * @example
 * const endpoint = await startGrpcServer({ coordinator, operatorDigest, port: 7070, log });
 */
export async function startGrpcServer(opts: GrpcServerOptions): Promise<GrpcEndpoint> {
  const server = new grpc.Server({ ...GRPC_CHANNEL_OPTIONS });
  const connections = createConnectionTracker();
  addService(
    server,
    ClientService,
    clientServiceHandlers({
      coordinator: opts.coordinator,
      directory: directoryOf(opts.coordinator),
      connections,
      log: opts.log,
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
  const credentials =
    opts.tls === undefined
      ? grpc.ServerCredentials.createInsecure()
      : grpc.ServerCredentials.createSsl(
          null,
          [{ cert_chain: opts.tls.cert, private_key: opts.tls.key }],
          false,
        );
  const host = opts.host ?? "127.0.0.1";
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${host}:${opts.port ?? 0}`, credentials, (err, bound) =>
      err ? reject(err) : resolve(bound),
    );
  });
  opts.log.info("gRPC listening", { host, port, tls: opts.tls !== undefined });
  return {
    port,
    address: `${host.includes(":") ? `[${host}]` : host}:${port}`,
    connections,
    close(graceMs = 2000) {
      return new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };
}
