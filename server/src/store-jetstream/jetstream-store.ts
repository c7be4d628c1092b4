/**
 * The `CoordinatorStore` on a NATS JetStream cluster: the journal is a
 * stream (each append expects the last sequence, so writers never
 * interleave), upload bytes are staged on a stream and committed updates and
 * merged adapters are objects of a bucket, all with the configured replicas;
 * an update is acknowledged only once JetStream acknowledged its bytes and
 * its event. A local cache directory holds verified copies of the objects a
 * merge or a download reads. Selected by `tributary serve --store jetstream`.
 */
import { chmod, mkdir } from "node:fs/promises";
import type { Log } from "../core/log.ts";
import type { CoordinatorStore, JournalEvent, NewJournalEvent, StoreState } from "../core/store.ts";
import { describeUpload, JournalEventError, StoreArgumentError } from "../core/store-errors.ts";
import type { AdapterStore } from "../store/adapter-store.ts";
import { parseJournalEvent } from "../store/journal-codec.ts";
import { checkEvent } from "../store/journal-state.ts";
import { createKeyedMutex } from "../store/keyed-mutex.ts";
import { checkId, checkRound } from "../store/paths.ts";
import { removedAnything } from "../store/recovery.ts";
import { openUpdateReader, type ReaderRegistry } from "../store/update-reader.ts";
import { type JournalStream, openJournalStream } from "./journal-stream.ts";
import { DEFAULT_JETSTREAM_NAMES, type JetStreamNames, updateObject } from "./names.ts";
import { createObjectCache, type ObjectCache, type StoredObjectRef } from "./object-cache.ts";
import { type JetStreamHandles, openJetStream } from "./setup.ts";
import { createStreamAdapters } from "./stream-adapters.ts";
import { recoverStreams } from "./stream-recovery.ts";
import { createStreamUploads, type StreamUploads } from "./stream-uploads.ts";

/** Options of {@link createJetStreamStore}. */
export interface JetStreamStoreOptions {
  /** NATS server URLs of the cluster. */
  readonly servers: readonly string[];
  /** Replicas of the streams and the bucket (default 1; 3 on a 3-node cluster). */
  readonly replicas?: number;
  /** Local directory for verified copies of objects (created if needed). */
  readonly cacheDir: string;
  /** Stream and bucket names (default {@link DEFAULT_JETSTREAM_NAMES}). */
  readonly names?: JetStreamNames;
  /** Clock for events appended without `at` (default `Date.now`). */
  readonly now?: () => number;
  readonly log?: Log;
  /** Timeout of each JetStream request (default 3 s; a timed-out request is tried again). */
  readonly requestTimeoutMs?: number;
}

/** A store on JetStream; it also says which stored object a local copy is of (for merge workers). */
export interface JetStreamStore extends CoordinatorStore {
  /** The committed update object whose verified copy `path` is, when it is one this store opened. */
  objectAt(path: string): StoredObjectRef | undefined;
}

/** How many local copies `objectAt` knows (the oldest forgotten first): rounds' worth of clients. */
const MAX_COPIES_KNOWN = 100_000;

/** How many times an append is decided again after other writers journaled first. */
const APPEND_ATTEMPTS = 8;

interface Opened {
  readonly h: JetStreamHandles;
  readonly journal: JournalStream;
  readonly uploads: StreamUploads;
  readonly adapters: AdapterStore;
  readonly cache: ObjectCache;
}

/**
 * A store on the JetStream cluster at `options.servers`. Call `open()` first.
 *
 * @example
 * const store = createJetStreamStore({ servers: ["nats://n1:4222", "nats://n2:4222"], replicas: 3, cacheDir });
 * const state = await store.open();
 */
export function createJetStreamStore(options: JetStreamStoreOptions): JetStreamStore {
  const names = options.names ?? DEFAULT_JETSTREAM_NAMES;
  const now = options.now ?? Date.now;
  const locked = createKeyedMutex();
  const readers: ReaderRegistry = new Set();
  let opened: Opened | undefined;
  let closed = false;
  const followers = new Set<(event: JournalEvent) => void>();
  /** Local copies of update objects → the object (the latest {@link MAX_COPIES_KNOWN}). */
  const copies = new Map<string, StoredObjectRef>();
  let following: (() => void) | undefined;
  /** Reads what other coordinators journaled (their events reach `followers` on the way). */
  const catchUpSoon = (() => {
    let queued = false;
    return () => {
      if (queued || closed || opened === undefined) return;
      queued = true;
      const { journal } = opened;
      void locked("journal", async () => {
        queued = false;
        if (!closed) await journal.catchUp();
      }).catch((err: unknown) =>
        options.log?.warn("could not read the journal's new events", { error: err }),
      );
    };
  })();
  const where = `JetStream store (${options.servers.join(",")})`;

  const live = (): Opened => {
    if (closed) throw new Error(`${where}: the store is closed`);
    if (opened === undefined) throw new Error(`${where}: call open() before using the store`);
    return opened;
  };

  const append = (draft: NewJournalEvent): Promise<JournalEvent> => {
    const { journal, uploads } = live();
    return locked("journal", async () => {
      for (let attempt = 0; attempt < APPEND_ATTEMPTS; attempt++) {
        const state = journal.state;
        const text = JSON.stringify({ ...draft, seq: state.lastSeq + 1, at: draft.at ?? now() });
        const event = parseJournalEvent(JSON.parse(text));
        checkEvent(state, event);
        if (event.type === "update-accepted") uploads.checkCommitted(event.update);
        if ((await journal.tryAppend(event)) === "written") {
          if (event.type === "update-accepted") uploads.journaled(event.update);
          return event;
        }
      }
      throw new JournalEventError(
        `${draft.type}: other coordinators kept journaling first (${APPEND_ATTEMPTS} attempts)`,
      );
    });
  };

  return {
    async open(): Promise<StoreState> {
      if (opened !== undefined || closed) throw new Error(`${where}: open() may be called once`);
      await mkdir(options.cacheDir, { recursive: true, mode: 0o700 });
      await chmod(options.cacheDir, 0o700);
      const h = await openJetStream(names, {
        servers: options.servers,
        replicas: options.replicas ?? 1,
        ...(options.requestTimeoutMs !== undefined ? { requestTimeoutMs: options.requestTimeoutMs } : {}),
        onRetry: (err) =>
          options.log?.warn("JetStream is not ready for the store yet; trying again", { error: err }),
      });
      try {
        const journal = await openJournalStream(h, names, (event) => {
          for (const listener of followers) listener(event);
        });
        const recovery = await recoverStreams(h, names, journal.state);
        if (removedAnything(recovery)) options.log?.warn("removed what a crash left behind", { ...recovery });
        const uploads = createStreamUploads(h, names, () => journal.state, locked);
        const cache = createObjectCache(h, names.bucket, options.cacheDir, locked);
        const adapters = createStreamAdapters(h, names.bucket, cache, locked, readers);
        opened = { h, journal, uploads, adapters, cache };
        options.log?.info("JetStream store open", {
          servers: options.servers.join(","),
          replicas: options.replicas ?? 1,
          events: journal.state.lastSeq,
        });
        return journal.state;
      } catch (err) {
        await h.close();
        throw err;
      }
    },
    state: () => live().journal.state,
    append,
    beginUpload: async (key, expected) => live().uploads.begin(key, expected),
    uploadStatus: async (key) => live().uploads.status(key),
    discardUpload: async (key) => live().uploads.discard(key),
    discardRoundUploads: async (federationId, round) => live().uploads.discardRound(federationId, round),
    objectAt: (path) => copies.get(path),
    async openUpdate(federationId, round, clientId) {
      const { uploads, cache } = live();
      checkId("federation_id", federationId);
      checkRound(round);
      checkId("client_id", clientId);
      const label = `${describeUpload({ federationId, round, clientId })} update`;
      const update = uploads.committed(federationId, round, clientId);
      if (update === undefined) throw new StoreArgumentError(`${label}: nothing committed`);
      const name = updateObject(federationId, round, clientId, update.updateId);
      const path = await cache.fetch(
        name,
        ["updates", federationId, String(round), clientId, `${update.updateId}.safetensors`],
        update,
      );
      copies.delete(path);
      copies.set(path, { name, size: update.size, sha256: update.sha256 });
      if (copies.size > MAX_COPIES_KNOWN) copies.delete(copies.keys().next().value as string);
      return openUpdateReader(path, label, readers);
    },
    follow(listener) {
      const { h } = live();
      followers.add(listener);
      if (following === undefined) {
        // Every append on the journal subject is a hint to read; the timer covers missed hints.
        const sub = h.nc.subscribe(names.journalSubject, { callback: () => catchUpSoon() });
        const timer = setInterval(catchUpSoon, 1_000);
        timer.unref();
        following = () => {
          sub.unsubscribe();
          clearInterval(timer);
        };
      }
      return () => {
        followers.delete(listener);
      };
    },
    putAdapter: async (input) => live().adapters.put(input),
    getAdapter: async (hash) => live().adapters.get(hash),
    adapterForRound: async (federationId, round) => live().adapters.forRound(federationId, round),
    async close() {
      if (closed) return;
      closed = true;
      if (opened === undefined) return;
      const { h, uploads } = opened;
      following?.();
      await uploads.closeAll();
      await Promise.all([...readers].map((r) => r.close()));
      await locked("journal", () => h.close());
    },
  };
}
