/** A connection of its own and one KV bucket whose entries expire: what leases and presence are kept in. */
import { StorageType } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { connectCluster } from "./setup.ts";
import { retryUntilReady } from "./transient.ts";

/** How to open an expiring KV bucket. */
export interface KvBucketOptions {
  readonly servers: readonly string[];
  /** Connection name shown by the server. */
  readonly name: string;
  readonly bucket: string;
  /** How long an entry lives unrewritten, in ms. */
  readonly ttlMs: number;
  readonly replicas: number;
  /** Request timeout (default NATS's). */
  readonly timeoutMs?: number;
  /** Told about each failed try to create the bucket while the cluster is not ready. */
  readonly onRetry?: (err: unknown) => void;
}

/**
 * Connects (reconnecting for ever) and creates or opens the bucket, trying
 * again while the cluster is not ready (`retryUntilReady`).
 *
 * @example
 * const { nc, kv } = await openKvBucket({ servers, name: "tributary-leases-a", bucket: "tributary-leases", ttlMs: 6000, replicas: 3 });
 */
export async function openKvBucket(options: KvBucketOptions): Promise<{ nc: NatsConnection; kv: KV }> {
  const nc = await connectCluster({
    servers: options.servers,
    name: options.name,
    reconnectTimeWait: 250,
    ...(options.timeoutMs !== undefined ? { timeout: options.timeoutMs } : {}),
  });
  try {
    const kv = await retryUntilReady(
      () =>
        new Kvm(nc).create(options.bucket, {
          ttl: options.ttlMs,
          history: 1,
          replicas: options.replicas,
          storage: StorageType.File,
        }),
      {
        servers: options.servers,
        what: `the KV bucket ${options.bucket}`,
        ...(options.onRetry !== undefined ? { onRetry: options.onRetry } : {}),
      },
    );
    return { nc, kv };
  } catch (err) {
    await nc.close();
    throw err;
  }
}
