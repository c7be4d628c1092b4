/**
 * The embedded `CoordinatorStore`: everything in one data directory on the
 * local file system (layout in `paths.ts`). Durability comes from fsync
 * before every acknowledgement — of the journal line, of upload bytes at
 * commit, of the directories renames happen in — so a coordinator killed at
 * any point restarts with every acknowledged event and update.
 */
import { chmod, mkdir, statfs } from "node:fs/promises";
import { join } from "node:path";
import type { Log } from "../core/log.ts";
import type { CoordinatorStore, JournalEvent, StoreState } from "../core/store.ts";
import { describeUpload, StoreArgumentError, StoreCorruptError } from "../core/store-errors.ts";
import { createAdapterStore } from "./adapter-store.ts";
import { errnoCode } from "./fs-util.ts";
import { encodeJournalLine, parseJournalEvent } from "./journal-codec.ts";
import { type JournalFile, openJournal } from "./journal-file.ts";
import { acceptedUpdate, applyEvent, checkEvent } from "./journal-state.ts";
import { createKeyedMutex } from "./keyed-mutex.ts";
import { acquireLock } from "./lock.ts";
import { type StoreLayout, slotKey, storeLayout } from "./paths.ts";
import type { RecoveryReport } from "./recovery.ts";
import { recover, removedAnything } from "./recovery.ts";
import { openUpdateReader, type ReaderRegistry } from "./update-reader.ts";
import { createUploads, type Uploads } from "./uploads.ts";

/** Options of `createFileStore`. */
export interface FileStoreOptions {
  /** Clock for events appended without `at` (default `Date.now`). */
  readonly now?: () => number;
  /** Where `open` reports what it cleaned up (default: nowhere). */
  readonly log?: Log;
  /** Free bytes of the data directory's file system (default: `statfs`); uploads are admitted against it. */
  readonly freeBytes?: () => Promise<number>;
}

/** Free bytes an unprivileged writer may use on `dir`'s file system. */
async function freeBytesOf(dir: string): Promise<number> {
  const s = await statfs(dir);
  return s.bavail * s.bsize;
}

/** The file store: a `CoordinatorStore` plus what its open found. */
export interface FileStore extends CoordinatorStore {
  /** The data directory. */
  readonly dataDir: string;
  /** Bytes of a torn last journal line removed by `open` (0 normally). */
  readonly tornBytes: number;
  /** What `open` cleaned up; `undefined` before `open`. */
  readonly recovery: RecoveryReport | undefined;
}

interface Opened {
  readonly journal: JournalFile;
  readonly uploads: Uploads;
  readonly adapters: ReturnType<typeof createAdapterStore>;
  readonly release: () => Promise<void>;
  readonly recovery: RecoveryReport;
}

/**
 * A store on data directory `dataDir` (created if needed). Call `open()`
 * first; one open store per directory (a `LOCK` file holds the pid).
 *
 * @example
 * const store = createFileStore("/var/lib/tributary");
 * const state = await store.open();
 * await store.append({ type: "federation-created", federation });
 * const sink = await store.beginUpload(key, { size, sha256 });
 * for await (const chunk of body) await sink.write(chunk);
 * const committed = await sink.commit();
 * await store.append({ type: "update-accepted", update: { ...record, sha256, size } });
 */
export function createFileStore(dataDir: string, options: FileStoreOptions = {}): FileStore {
  const now = options.now ?? Date.now;
  const layout: StoreLayout = storeLayout(dataDir);
  const locked = createKeyedMutex();
  const readers: ReaderRegistry = new Set();
  let opened: Opened | undefined;
  let closed = false;

  const live = (): Opened => {
    if (closed) throw new Error(`${dataDir}: the store is closed`);
    if (opened === undefined) throw new Error(`${dataDir}: call open() before using the store`);
    return opened;
  };

  const append = async (draft: Parameters<CoordinatorStore["append"]>[0]): Promise<JournalEvent> => {
    const { journal, uploads } = live();
    return locked("journal", async () => {
      const state = journal.state;
      // Round-trip through JSON so the live state equals what a replay will see.
      const text = JSON.stringify({ ...draft, seq: state.lastSeq + 1, at: draft.at ?? now() });
      const event = parseJournalEvent(JSON.parse(text));
      checkEvent(state, event);
      const write = async (): Promise<JournalEvent> => {
        await journal.append(encodeJournalLine(event));
        applyEvent(state, event);
        return event;
      };
      if (event.type !== "update-accepted") return write();
      const u = event.update;
      // Hold the slot so the committed file cannot be discarded while its event is written.
      return locked(`slot:${slotKey(u.federationId, u.round, u.clientId)}`, async () => {
        uploads.checkCommitted(u);
        const written = await write();
        uploads.journaled(u);
        return written;
      });
    });
  };

  return {
    dataDir,
    get tornBytes() {
      return opened?.journal.tornBytes ?? 0;
    },
    get recovery() {
      return opened?.recovery;
    },
    async open(): Promise<StoreState> {
      if (opened !== undefined || closed) throw new Error(`${dataDir}: open() may be called once`);
      await mkdir(dataDir, { recursive: true, mode: 0o700 });
      // An existing directory keeps its mode otherwise: clients' updates are private.
      await chmod(dataDir, 0o700);
      const release = await acquireLock(layout.lock);
      try {
        const journal = await openJournal(layout.journal);
        try {
          const recovery = await recover(layout, journal.state);
          if (removedAnything(recovery))
            options.log?.warn("removed what a crash left behind", { dataDir, ...recovery });
          const uploads = createUploads(
            layout,
            () => journal.state,
            locked,
            options.freeBytes ?? (async () => freeBytesOf(dataDir)),
          );
          const adapters = createAdapterStore(layout, locked, readers);
          opened = { journal, uploads, adapters, release, recovery };
          return journal.state;
        } catch (err) {
          await journal.close();
          throw err;
        }
      } catch (err) {
        await release();
        throw err;
      }
    },
    state: () => live().journal.state,
    append,
    beginUpload: async (key, expected) => live().uploads.begin(key, expected),
    uploadStatus: async (key) => live().uploads.status(key),
    discardUpload: async (key) => live().uploads.discard(key),
    discardRoundUploads: async (federationId, round) => live().uploads.discardRound(federationId, round),
    async openUpdate(federationId, round, clientId) {
      const { journal } = live();
      const { dirs, file } = layout.update(federationId, round, clientId);
      const path = join(layout.root, ...dirs, file);
      const label = `${describeUpload({ federationId, round, clientId })} update`;
      try {
        return await openUpdateReader(path, label, readers);
      } catch (err) {
        if (errnoCode(err) !== "ENOENT") throw err;
        if (acceptedUpdate(journal.state, federationId, round, clientId) !== undefined) {
          throw new StoreCorruptError(`${path}: accepted ${label} is missing`, path, undefined, {
            cause: err,
          });
        }
        throw new StoreArgumentError(`${label}: nothing committed`, { cause: err });
      }
    },
    putAdapter: async (input) => live().adapters.put(input),
    getAdapter: async (hash) => live().adapters.get(hash),
    adapterForRound: async (federationId, round) => live().adapters.forRound(federationId, round),
    async close() {
      if (closed) return;
      closed = true;
      if (opened === undefined) return;
      const { journal, uploads, release } = opened;
      await uploads.closeAll();
      await Promise.all([...readers].map((r) => r.close()));
      await locked("journal", () => journal.close());
      await release();
    },
  };
}
