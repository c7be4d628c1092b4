/**
 * A NATS connection that outlives NATS outages: it keeps trying to connect
 * until the first connection succeeds, then lets the client reconnect
 * forever, and tracks whether it is currently connected.
 */
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { type Log, silentLog } from "@tributary/protocol";

/** Options of {@link openNatsLink}. */
export interface NatsLinkOptions {
  /** Server URL(s), e.g. `nats://127.0.0.1:4222`. */
  readonly servers: string | readonly string[];
  /** Client name shown in the server's monitoring. */
  readonly name?: string;
  /** Wait between (re)connect attempts (default 2000 ms). */
  readonly reconnectTimeWaitMs?: number;
  readonly log?: Log;
}

/** A long-lived, self-healing NATS connection. */
export interface NatsLink {
  /** Resolves with the connection once it is first established; rejects if the link is closed first. */
  connection(): Promise<NatsConnection>;
  /** Whether a connection is up right now. */
  isConnected(): boolean;
  /** Whether NATS is known to be unreachable: the first connect attempt failed, or the connection was lost. */
  isDown(): boolean;
  /** Whether the link has been closed. */
  isClosed(): boolean;
  /** Stops connecting and closes the connection. */
  close(): Promise<void>;
}

/**
 * Opens a {@link NatsLink} (connecting in the background; nothing throws when NATS is down).
 *
 * @example
 * const link = openNatsLink({ servers: "nats://127.0.0.1:4222" });
 * const nc = await link.connection();
 */
export function openNatsLink(options: NatsLinkOptions): NatsLink {
  const log = options.log ?? silentLog;
  const waitMs = options.reconnectTimeWaitMs ?? 2_000;
  const servers = typeof options.servers === "string" ? [options.servers] : [...options.servers];
  let closed = false;
  let connected = false;
  let failedAttempts = 0;
  let nc: NatsConnection | undefined;
  let wake: () => void = () => {};
  let resolveReady: (nc: NatsConnection) => void = () => {};
  let rejectReady: (err: Error) => void = () => {};
  const ready = new Promise<NatsConnection>((resolve, reject) => {
    resolveReady = resolve;
    rejectReady = reject;
  });
  ready.catch(() => {});

  const track = async (conn: NatsConnection) => {
    for await (const status of conn.status()) {
      if (status.type === "disconnect") {
        connected = false;
        if (!closed) log.warn("NATS disconnected; reconnecting", { server: status.server });
      } else if (status.type === "reconnect") {
        connected = true;
        log.info("NATS reconnected", { server: status.server });
      } else if (status.type === "close") {
        connected = false;
      }
    }
  };

  const firstConnect = async () => {
    while (!closed) {
      try {
        const conn = await connect({
          servers,
          name: options.name,
          reconnect: true,
          maxReconnectAttempts: -1,
          reconnectTimeWait: waitMs,
          timeout: 5_000,
        });
        if (closed) {
          await conn.close();
          return;
        }
        nc = conn;
        connected = true;
        void track(conn);
        log.info("NATS connected", { server: conn.getServer() });
        resolveReady(conn);
        return;
      } catch (err) {
        if (failedAttempts === 0)
          log.warn("NATS unreachable; retrying", {
            servers: redactCredentials(servers),
            error: (err as Error).message,
          });
        failedAttempts++;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, waitMs);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    }
  };
  const connecting = firstConnect();

  return {
    connection: () => ready,
    isConnected: () => connected && !closed,
    isDown: () => !connected && (nc !== undefined || failedAttempts > 0),
    isClosed: () => closed,
    async close() {
      if (closed) return;
      closed = true;
      connected = false;
      wake();
      rejectReady(new Error("NATS link closed"));
      await connecting;
      await nc?.close();
    },
  };
}

/**
 * Settles like `promise`, or rejects with `onTimeout()` after `ms`.
 *
 * @example
 * await withTimeout(nc.flush(), 1000, () => new Error("flush timed out"));
 */
export async function withTimeout<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Server URL(s) with any password (or token in the user part) replaced by
 * `***`, for logs and banners: `nats://app:secret@host:4222` →
 * `nats://app:***@host:4222`, `nats://tok3n@host` → `nats://***@host`.
 *
 * @example
 * log.info("publishing to NATS", { servers: redactCredentials(servers) });
 */
export function redactCredentials(servers: string | readonly string[]): string {
  const list = typeof servers === "string" ? servers.split(",") : [...servers];
  return list
    .map((url) =>
      url.trim().replace(/^([a-z][a-z0-9+.-]*:\/\/)([^@/]*)@/i, (_, scheme: string, userinfo: string) => {
        const colon = userinfo.indexOf(":");
        return `${scheme}${colon >= 0 ? `${userinfo.slice(0, colon)}:***` : "***"}@`;
      }),
    )
    .join(",");
}
