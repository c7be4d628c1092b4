/**
 * Connecting the JetStream store and creating what it needs, with its
 * replicas, when it opens — not lazily on first use: JetStream cannot create
 * a replicated stream while a cluster node is down.
 */
import {
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
  StorageType,
  type StreamConfig,
} from "@nats-io/jetstream";
import { type ObjectStore, Objm } from "@nats-io/obj";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { StoreUnavailableError } from "../core/store-errors.ts";
import type { JetStreamNames } from "./names.ts";
import { retryUntilReady } from "./transient.ts";

/** The connection and handles of an open JetStream store. */
export interface JetStreamHandles {
  /** The connection of the journal and of control requests (short timeouts). */
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  /**
   * A second connection for bulk transfers — objects, and reading staged
   * uploads back — so megabytes in flight never delay the journal; its
   * requests get {@link BULK_TIMEOUT_MS}.
   */
  readonly bulk: { readonly nc: NatsConnection; readonly js: JetStreamClient };
  /** The bucket, on the bulk connection. */
  readonly objects: ObjectStore;
  /** Closes both connections. */
  close(): Promise<void>;
}

/** Timeout of a bulk request (an object chunk's acknowledgement among many in flight). */
export const BULK_TIMEOUT_MS = 8_000;

/** How to reach the cluster. */
export interface JetStreamConnectOptions {
  /** Server URLs of the cluster (a client takes any of them, and fails over to the others). */
  readonly servers: readonly string[];
  /** Replicas of every stream and the bucket (1, 3 or 5; at most the cluster's size). */
  readonly replicas: number;
  /** Timeout of each JetStream request (default 3 s; a timed-out request is tried again). */
  readonly requestTimeoutMs?: number;
  /** Connection name shown by the server. */
  readonly name?: string;
  /**
   * How long to keep trying while JetStream cannot create what the store
   * needs yet — a cluster still electing its leaders, or a node down when
   * replicas are placed (default 60 s).
   */
  readonly readyTimeoutMs?: number;
  /** Told about each failed try. */
  readonly onRetry?: (err: unknown) => void;
  /**
   * Only attach to what a coordinator created — a merge worker does — waiting
   * (up to `readyTimeoutMs`) until it exists; `replicas` is then not used.
   */
  readonly attach?: boolean;
}

/**
 * Creates stream `config.name`, or adopts it, changing its replica count to
 * `config.num_replicas` when it differs.
 *
 * @example
 * await ensureStream(jsm, { name: "TRIBUTARY_JOURNAL", subjects: ["tributary.journal"], num_replicas: 3 });
 */
export async function ensureStream(
  jsm: JetStreamManager,
  config: Partial<StreamConfig> & { name: string },
): Promise<void> {
  try {
    const info = await jsm.streams.info(config.name);
    if (info.config.num_replicas !== config.num_replicas) {
      await jsm.streams.update(config.name, { ...info.config, num_replicas: config.num_replicas });
    }
  } catch (err) {
    if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound)) throw err;
    await jsm.streams.add(config);
  }
}

/**
 * Connects to `options.servers` and creates (or adopts) the journal stream,
 * the upload stream and the object store bucket named in `names` — or, with
 * `attach`, opens the bucket a coordinator created.
 *
 * @example
 * const h = await openJetStream(DEFAULT_JETSTREAM_NAMES, { servers: ["nats://n1:4222"], replicas: 3 });
 */
export async function openJetStream(
  names: JetStreamNames,
  options: JetStreamConnectOptions,
): Promise<JetStreamHandles> {
  const timeout = options.requestTimeoutMs ?? 3_000;
  const open = (name: string) =>
    connectCluster({ servers: options.servers, name, reconnectTimeWait: 500, timeout });
  const nc = await open(options.name ?? "tributary-store");
  const bulkNc = await open(`${options.name ?? "tributary-store"}-bulk`).catch(async (err: unknown) => {
    await nc.close();
    throw err;
  });
  const close = async () => {
    await Promise.all([nc.close(), bulkNc.close()]);
  };
  try {
    const bulkJs = jetstream(bulkNc, { timeout: BULK_TIMEOUT_MS });
    const js = jetstream(nc, { timeout });
    const replicas = options.replicas;
    const { jsm, objects } = await retryUntilReady(
      async () => {
        const jsm = await jetstreamManager(nc, { timeout });
        if (options.attach === true) return { jsm, objects: await new Objm(bulkJs).open(names.bucket) };
        await ensureStreams(jsm, names, replicas);
        return {
          jsm,
          objects: await new Objm(bulkJs).create(names.bucket, { storage: StorageType.File, replicas }),
        };
      },
      {
        ...options,
        ...(options.attach === true
          ? { action: "find", what: "the store's object bucket (a coordinator creates it when it starts)" }
          : { what: "the store's streams and object bucket" }),
      },
    );
    return { nc, js, jsm, bulk: { nc: bulkNc, js: bulkJs }, objects, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** Options of {@link connectCluster}. */
export interface ClusterConnectOptions {
  readonly servers: readonly string[];
  /** Connection name shown by the server. */
  readonly name: string;
  /** Pause between reconnection attempts, in ms. */
  readonly reconnectTimeWait: number;
  /** Request and connect timeout, in ms (default NATS's). */
  readonly timeout?: number;
}

/**
 * Connects to any of `servers`, reconnecting for ever once connected. When
 * none answers at first, throws a `StoreUnavailableError` that names them and
 * says what to check (no stack trace reaches the operator).
 *
 * @example
 * const nc = await connectCluster({ servers: ["nats://n1:4222"], name: "tributary-store", reconnectTimeWait: 500 });
 */
export async function connectCluster(options: ClusterConnectOptions): Promise<NatsConnection> {
  try {
    return await connect({
      servers: [...options.servers],
      name: options.name,
      maxReconnectAttempts: -1,
      reconnectTimeWait: options.reconnectTimeWait,
      ...(options.timeout !== undefined ? { timeout: options.timeout } : {}),
    });
  } catch (err) {
    throw new StoreUnavailableError(
      `could not reach the NATS JetStream cluster at ${options.servers.join(",")} (${(err as Error).message}); ` +
        "start it, or point --nats-url at it",
      { cause: err },
    );
  }
}

async function ensureStreams(jsm: JetStreamManager, names: JetStreamNames, replicas: number): Promise<void> {
  await ensureStream(jsm, {
    name: names.journalStream,
    subjects: [names.journalSubject],
    storage: StorageType.File,
    num_replicas: replicas,
  });
  await ensureStream(jsm, {
    name: names.uploadStream,
    subjects: [`${names.uploadPrefix}.>`],
    storage: StorageType.File,
    num_replicas: replicas,
  });
}
