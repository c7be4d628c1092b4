/**
 * The gRPC side of a client: one `ClientService` channel to the coordinator
 * (TLS when a CA is given), the bearer token on every call, and promise
 * wrappers over the unary methods.
 */
import * as grpc from "@grpc/grpc-js";
import {
  ClientService,
  callUnary,
  coordinatorTarget,
  type GrpcClient,
  makeClient,
  type UnaryMethodName,
} from "@tributary/protocol";

/** TLS settings of the coordinator connection. */
export interface TlsOptions {
  /** PEM CA certificate(s) to trust; absent = the system's roots. */
  readonly ca?: Buffer;
  /** PEM client certificate, for a coordinator that requires mutual TLS (its subject CN is the client id). */
  readonly cert?: Buffer;
  /** PEM private key of `cert`. */
  readonly key?: Buffer;
}

/** One connection to the coordinator's `ClientService`. */
export interface Channel {
  readonly client: GrpcClient<typeof ClientService>;
  /** Fresh call metadata carrying the bearer token. */
  metadata(): grpc.Metadata;
  close(): void;
}

type Svc = typeof ClientService;
type Unary = UnaryMethodName<Svc>;

/**
 * Opens a channel to `address`: `host:port`, or several coordinators sharing
 * one store as `ip:port,ip:port` (the channel uses the first that answers and
 * moves on when it dies; see `coordinatorTarget`); insecure unless `tls` is given.
 */
export function openChannel(address: string, token: string, tls?: TlsOptions): Channel {
  const credentials =
    tls === undefined
      ? grpc.credentials.createInsecure()
      : grpc.credentials.createSsl(tls.ca ?? null, tls.key ?? null, tls.cert ?? null);
  const client = makeClient(ClientService, coordinatorTarget(address), credentials, {
    "grpc.initial_reconnect_backoff_ms": 200,
    "grpc.max_reconnect_backoff_ms": 5_000,
  });
  return {
    client,
    metadata() {
      const md = new grpc.Metadata();
      // With a client certificate the token may be empty: the certificate identifies the client.
      if (token !== "") md.set("authorization", `Bearer ${token}`);
      return md;
    },
    close: () => client.close(),
  };
}

/** Calls unary method `method` with the channel's token (rejects with the grpc-js `ServiceError`). */
export function unary<K extends Unary>(
  channel: Channel,
  method: K,
  request: Parameters<typeof callUnary<Svc, K>>[2],
): ReturnType<typeof callUnary<Svc, K>> {
  return callUnary(channel.client, method, request, channel.metadata());
}
