/**
 * Publishing a merged round on NATS: the adapter into a JetStream object
 * store bucket, then the announcement into the `TRIBUTARY_ROUNDS` stream.
 */
import {
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
  StorageType,
} from "@nats-io/jetstream";
import { type ObjectStore, Objm } from "@nats-io/obj";
import type { NatsConnection } from "@nats-io/transport-node";
import { openNatsLink, withTimeout } from "@tributary/client/nats";
import {
  type AdapterObjects,
  announcementSubject,
  DEFAULT_BUCKET,
  DEFAULT_STREAM,
  DEFAULT_SUBJECT_PREFIX,
  type Log,
  objectStoreDigest,
  type ResultAdapter,
  sha256Hex,
  silentLog,
  toAnnouncement,
} from "@tributary/protocol";
import type { RoundResult } from "../../core/model.ts";
import {
  PublishConflictError,
  PublishContentError,
  type PublishedAdapter,
  PublishUnavailableError,
  type ResultPublisher,
} from "../../core/publisher.ts";

/** Options of {@link createNatsPublisher}. */
export interface NatsPublisherOptions {
  /** Server URL(s). */
  readonly servers: string | readonly string[];
  /** Object store bucket (created if missing; default `tributary-adapters`). */
  readonly bucket?: string;
  /** Announcements go to `<subjectPrefix>.<federationId>` (default `tributary.rounds`). */
  readonly subjectPrefix?: string;
  /** Stream capturing `<subjectPrefix>.>` (created if missing; default `TRIBUTARY_ROUNDS`). */
  readonly stream?: string;
  /** Longest a whole `publish()` may take before it fails with `PublishUnavailableError` (default 30 s). */
  readonly timeoutMs?: number;
  /** Timeout of each JetStream request (default 5 s). */
  readonly requestTimeoutMs?: number;
  /** Replicas of the stream and the bucket when this publisher creates them (default 1). */
  readonly replicas?: number;
  /**
   * Create the stream and the bucket now rather than at the first publish
   * (a replicated stream cannot be created while a cluster node is down);
   * a failure is logged and tried again at the first publish.
   */
  readonly eager?: boolean;
  /** Wait between reconnect attempts (default 2 s). */
  readonly reconnectTimeWaitMs?: number;
  readonly log?: Log;
}

interface Handles {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly store: ObjectStore;
}

const sameDigest = (a: string, b: string) => a.replace(/=+$/, "") === b.replace(/=+$/, "");

function checkContent(
  result: RoundResult,
  adapter: ResultAdapter,
  want: { readonly contentHash: string; readonly size: number; readonly rank?: number } = result,
): void {
  const what = `round ${result.round} of ${result.federationId}${want.rank !== undefined ? ` (rank ${want.rank} variant)` : ""}`;
  const hash = sha256Hex(adapter.safetensors);
  if (hash !== want.contentHash) {
    throw new PublishContentError(`${what}: safetensors sha256 ${hash} != contentHash ${want.contentHash}`);
  }
  if (adapter.safetensors.byteLength !== want.size) {
    throw new PublishContentError(
      `${what}: safetensors is ${adapter.safetensors.byteLength} bytes, result says ${want.size}`,
    );
  }
}

/** Checks every rank variant of `adapter` against `result.rankVariants` (same count, order, bytes). */
function checkVariants(result: RoundResult, adapter: PublishedAdapter): void {
  const want = result.rankVariants ?? [];
  const got = adapter.variants ?? [];
  if (got.length !== want.length) {
    throw new PublishContentError(
      `round ${result.round} of ${result.federationId}: ${got.length} rank variants given, the result has ${want.length}`,
    );
  }
  want.forEach((v, i) => {
    checkContent(result, got[i], v);
  });
}

async function ensureStream(
  jsm: JetStreamManager,
  stream: string,
  subjectPrefix: string,
  replicas: number,
): Promise<void> {
  try {
    await jsm.streams.info(stream);
  } catch (err) {
    if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound)) throw err;
    await jsm.streams.add({
      name: stream,
      subjects: [`${subjectPrefix}.>`],
      storage: StorageType.File,
      num_replicas: replicas,
    });
  }
}

async function putOnce(store: ObjectStore, bucket: string, name: string, bytes: Uint8Array, timeout: number) {
  const digest = objectStoreDigest(bytes);
  const existing = await store.info(name);
  if (existing !== null && !existing.deleted) {
    if (sameDigest(existing.digest, digest)) return false;
    throw new PublishConflictError(
      `object ${name} of bucket ${bucket} already exists with different content`,
      bucket,
      name,
    );
  }
  await store.putBlob({ name }, bytes, { timeout });
  return true;
}

/** Last announcement on `subject`, or null (malformed ones count as none). */
async function lastAnnounced(jsm: JetStreamManager, stream: string, subject: string) {
  const msg = await jsm.streams.getMessage(stream, { last_by_subj: subject });
  if (msg === null) return null;
  try {
    return msg.json<{ round?: unknown; contentHash?: unknown }>();
  } catch {
    return null;
  }
}

/**
 * Creates a publisher that connects in the background and survives NATS
 * outages (it reconnects forever; `publish()` fails fast meanwhile).
 *
 * Announcements on a subject only move forward: a round older than the last
 * one announced for its federation is stored but not announced again.
 *
 * @example
 * const publisher = createNatsPublisher({ servers: "nats://127.0.0.1:4222", log: console });
 * await publisher.publish(result, { configJson, safetensors });
 * await publisher.close();
 */
export function createNatsPublisher(options: NatsPublisherOptions): ResultPublisher {
  const log = options.log ?? silentLog;
  const bucket = options.bucket ?? DEFAULT_BUCKET;
  const subjectPrefix = options.subjectPrefix ?? DEFAULT_SUBJECT_PREFIX;
  const stream = options.stream ?? DEFAULT_STREAM;
  const timeoutMs = options.timeoutMs ?? 30_000;
  const requestTimeoutMs = options.requestTimeoutMs ?? 5_000;
  const link = openNatsLink({
    servers: options.servers,
    name: "tributary-publisher",
    reconnectTimeWaitMs: options.reconnectTimeWaitMs,
    log,
  });
  let handles: Promise<Handles> | undefined;
  let queue: Promise<unknown> = Promise.resolve();

  const replicas = options.replicas ?? 1;
  const open = async (): Promise<Handles> => {
    const nc = await link.connection();
    const js = jetstream(nc, { timeout: requestTimeoutMs });
    const jsm = await jetstreamManager(nc, { timeout: requestTimeoutMs });
    await ensureStream(jsm, stream, subjectPrefix, replicas);
    const store = await new Objm(js).create(bucket, { storage: StorageType.File, replicas });
    return { nc, js, jsm, store };
  };

  if (options.eager === true) {
    // Created now, with their replicas (JetStream cannot create a replicated
    // stream while a node is down), trying again every second while the
    // cluster is not ready; a publish meanwhile tries too.
    const tryOpen = (attempt: number) => {
      const opening = open();
      handles = opening;
      opening.catch((err: unknown) => {
        if (handles === opening) handles = undefined;
        if (attempt === 0) {
          log.warn("could not create the announcement stream and bucket yet; trying again", { error: err });
        }
        setTimeout(() => {
          if (handles === undefined && !link.isClosed()) tryOpen(attempt + 1);
        }, 1_000).unref();
      });
    };
    tryOpen(0);
  }

  const storeAdapter = async (h: Handles, objects: AdapterObjects, adapter: ResultAdapter) => {
    const config = new TextEncoder().encode(adapter.configJson);
    const wroteModel = await putOnce(
      h.store,
      bucket,
      objects.safetensors,
      adapter.safetensors,
      requestTimeoutMs,
    );
    const wroteConfig = await putOnce(h.store, bucket, objects.config, config, requestTimeoutMs);
    return wroteModel || wroteConfig;
  };

  const run = async (result: RoundResult, adapter: PublishedAdapter) => {
    checkContent(result, adapter);
    checkVariants(result, adapter);
    const subject = announcementSubject(subjectPrefix, result.federationId);
    handles ??= open();
    const h = await handles.catch((err: unknown) => {
      handles = undefined;
      throw err;
    });
    const announcement = toAnnouncement(result, bucket);
    // The variants first: a watcher reading the announcement finds every object it names.
    for (const [i, v] of (announcement.rankVariants ?? []).entries()) {
      await storeAdapter(h, v.objects, adapter.variants![i]);
    }
    const stored = await storeAdapter(h, announcement.objects, adapter);
    const last = await lastAnnounced(h.jsm, stream, subject);
    if (last !== null && typeof last.round === "number" && last.round >= result.round) {
      if (last.round > result.round) {
        log.warn(
          `round ${result.round} of ${result.federationId} not announced: round ${last.round} already is`,
        );
      }
      if (last.round > result.round || last.contentHash === result.contentHash) return;
    }
    const ack = await h.js.publish(subject, JSON.stringify(announcement), {
      msgID: announcement.objects.safetensors,
      expect: { streamName: stream },
      timeout: requestTimeoutMs,
    });
    log.info(`published round ${result.round} of ${result.federationId}`, {
      contentHash: result.contentHash,
      stream,
      seq: ack.seq,
      duplicate: ack.duplicate,
      stored,
    });
  };

  const attempt = async (result: RoundResult, adapter: PublishedAdapter) => {
    if (link.isClosed()) throw new PublishUnavailableError("publisher is closed");
    if (link.isDown()) {
      throw new PublishUnavailableError(`NATS is not connected (${String(options.servers)})`);
    }
    try {
      await withTimeout(
        run(result, adapter),
        timeoutMs,
        () => new PublishUnavailableError(`publishing round ${result.round} took over ${timeoutMs} ms`),
      );
    } catch (err) {
      if (
        err instanceof PublishUnavailableError ||
        err instanceof PublishContentError ||
        err instanceof PublishConflictError
      ) {
        throw err;
      }
      handles = undefined;
      throw new PublishUnavailableError(`NATS unavailable: ${(err as Error).message}`, { cause: err });
    }
  };

  return {
    publish(result, adapter) {
      const next = queue.then(() => attempt(result, adapter));
      queue = next.catch(() => {});
      return next;
    },
    async close() {
      await link.close();
    },
  };
}
