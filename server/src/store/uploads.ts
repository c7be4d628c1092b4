/**
 * Upload staging of the file store. An upload lives in
 * `uploads/<fed>/<round>/<client>/<update>.partial` until `commit` verifies
 * it and renames it to `updates/<fed>/<round>/<client>.safetensors`; it is
 * *committed* then, and *accepted* once its `update-accepted` event is
 * journaled. A committed file whose event never made it (a crash in
 * between, or an update the coordinator rejected) is deleted at the next
 * open or by `discardUpload`, so only journaled updates are ever merged.
 */
import { constants, open, readdir, rename, rm, rmdir } from "node:fs/promises";
import { basename, join } from "node:path";
import type { UpdateRecord } from "../core/model.ts";
import type {
  CommittedUpload,
  ExpectedUpload,
  StoreState,
  UploadKey,
  UploadSink,
  UploadStatus,
} from "../core/store.ts";
import { StorageFullError, UpdateConflictError } from "../core/store-errors.ts";
import { ensureDir, errnoCode, syncDir, unlinkIfExists } from "./fs-util.ts";
import { acceptedUpdate } from "./journal-state.ts";
import type { KeyedMutex } from "./keyed-mutex.ts";
import { checkExpected, checkId, checkUploadKey, type StoreLayout, slotKey, uploadId } from "./paths.ts";
import { createPendingCommits } from "./pending-commits.ts";
import { committedSink, createUploadSink, type ManagedSink } from "./upload-sink.ts";

/** The upload half of the file store. */
export interface Uploads {
  begin(key: UploadKey, expected: ExpectedUpload): Promise<UploadSink>;
  status(key: UploadKey): Promise<UploadStatus>;
  discard(key: UploadKey): Promise<boolean>;
  /** Stops and deletes every partial upload of a round (committed updates are not touched). */
  discardRound(federationId: string, round: number): Promise<number>;
  /** Throws `StoreIntegrityError("not-committed")` unless `update` describes the committed, unjournaled upload of its slot. */
  checkCommitted(update: UpdateRecord): void;
  /** Forgets the pending commit of a slot once its event is journaled. */
  journaled(update: UpdateRecord): void;
  /** Supersedes every open sink. */
  closeAll(): Promise<void>;
}

/** Upload staging over `layout`; `state` is the live journal state. */
export function createUploads(
  layout: StoreLayout,
  state: () => StoreState,
  locked: KeyedMutex,
  freeBytes: () => Promise<number>,
): Uploads {
  const pending = createPendingCommits(state, (u) => acceptedPath(u).path);
  const active = new Map<string, ManagedSink>();

  const acceptedPath = (key: UploadKey): { dir: string[]; path: string } => {
    const { dirs, file } = layout.update(key.federationId, key.round, key.clientId);
    return { dir: dirs, path: join(layout.root, ...dirs, file) };
  };
  const partialPath = (key: UploadKey): { dirs: string[]; path: string } => {
    const { dirs, file } = layout.partial(key);
    return { dirs, path: join(layout.root, ...dirs, file) };
  };

  const accept = async (key: UploadKey, expected: ExpectedUpload, from: string): Promise<CommittedUpload> => {
    const slot = slotKey(key.federationId, key.round, key.clientId);
    return locked(`slot:${slot}`, async () => {
      const other = pending.get(key);
      const rec = acceptedUpdate(state(), key.federationId, key.round, key.clientId);
      const holder = rec?.updateId ?? other?.updateId;
      if (holder !== undefined && holder !== key.updateId) {
        throw new UpdateConflictError(
          key,
          `update "${holder}" is already ${rec ? "accepted" : "committed"} for this client and round`,
          holder,
        );
      }
      const { dir, path } = acceptedPath(key);
      if (holder === undefined) {
        await ensureDir(layout.root, dir);
        await rename(from, path);
        await syncDir(join(layout.root, ...dir));
        await rmdir(join(from, "..")).catch(() => undefined); // only if it held the last partial
        pending.set(key, { updateId: key.updateId, location: path, ...expected });
      } else {
        await unlinkIfExists(from); // a duplicate of what is stored
      }
      return { location: path, size: expected.size, sha256: expected.sha256 };
    });
  };

  const supersede = async (key: UploadKey): Promise<void> => {
    await active.get(uploadId(key))?.stop("superseded");
  };

  /**
   * One partial upload per client and round: starting update `key` stops and
   * deletes the client's partials of other update ids in the round, so a
   * client cannot stage many uploads at once under one size limit.
   */
  const dropOtherPartials = async (key: UploadKey): Promise<void> => {
    const { dirs, path } = partialPath(key);
    let names: string[];
    try {
      names = await readdir(join(layout.root, ...dirs));
    } catch (err) {
      if (errnoCode(err) === "ENOENT") return;
      throw err;
    }
    const own = basename(path);
    for (const name of names) {
      if (name === own || !name.endsWith(".partial")) continue;
      const other = { ...key, updateId: name.slice(0, -".partial".length) };
      await supersede(other);
      await unlinkIfExists(join(layout.root, ...dirs, name));
    }
  };

  return {
    begin: async (key, expected) =>
      locked(`upload:${uploadId(checkUploadKey(key))}`, async () => {
        checkExpected(expected);
        const done = pending.stored(key, expected);
        if (done !== undefined) return committedSink(key, expected, done);
        await supersede(key);
        // One partial per client and round: dropping the others and creating this one
        // happen under the client's lock, so two uploads begun at once cannot both stay.
        return locked(`client:${slotKey(key.federationId, key.round, key.clientId)}`, async () => {
          await dropOtherPartials(key);
          const { dirs, path } = partialPath(key);
          await ensureDir(layout.root, dirs);
          const handle = await open(path, constants.O_RDWR | constants.O_CREAT, 0o600);
          let sink: ManagedSink | undefined;
          try {
            await handle.sync();
            await syncDir(join(layout.root, ...dirs));
            let { size } = await handle.stat();
            if (size > expected.size) {
              // Left by different content under the same id: start over.
              await handle.truncate(0);
              await handle.sync();
              size = 0;
            }
            const id = uploadId(key);
            // Admitted uploads must be able to finish: what this one still needs has to fit
            // in the free space less what the uploads under way still need.
            let owed = 0;
            for (const [other, s] of active)
              if (other !== id) owed += Math.max(0, s.expected.size - s.offset);
            const free = (await freeBytes()) - owed;
            if (expected.size - size > free) {
              await handle.close();
              if (size === 0) await unlinkIfExists(path);
              throw new StorageFullError(key, expected.size - size, free);
            }
            sink = createUploadSink({
              key,
              expected,
              path,
              handle,
              offset: size,
              hooks: {
                accept: (from) => accept(key, expected, from),
                release: () => {
                  if (active.get(id) === sink) active.delete(id);
                },
              },
            });
            active.set(id, sink);
            return sink;
          } catch (err) {
            if (sink === undefined && !(err instanceof StorageFullError)) await handle.close();
            throw err;
          }
        });
      }),
    status: async (key) =>
      locked(`upload:${uploadId(checkUploadKey(key))}`, async () => {
        const done = pending.stored(key);
        if (done !== undefined) {
          const journaled = acceptedUpdate(state(), key.federationId, key.round, key.clientId);
          return { state: journaled ? "accepted" : "committed", bytes: done.size };
        }
        try {
          const handle = await open(partialPath(key).path, "r+");
          try {
            await handle.sync();
            return { state: "partial", bytes: (await handle.stat()).size };
          } finally {
            await handle.close();
          }
        } catch (err) {
          if (errnoCode(err) === "ENOENT") return { state: "none", bytes: 0 };
          throw err;
        }
      }),
    discard: async (key) =>
      locked(`upload:${uploadId(checkUploadKey(key))}`, async () => {
        await supersede(key);
        let removed = await unlinkIfExists(partialPath(key).path);
        const slot = slotKey(key.federationId, key.round, key.clientId);
        if (pending.get(key)?.updateId === key.updateId) {
          await locked(`slot:${slot}`, async () => {
            removed = (await unlinkIfExists(acceptedPath(key).path)) || removed;
            pending.delete(key);
          });
        }
        return removed;
      }),
    async discardRound(federationId, round) {
      const prefix = `${checkId("federation_id", federationId)}/${round}/`;
      let stopped = 0;
      for (const [id, sink] of [...active]) {
        if (id.startsWith(prefix)) {
          await sink.stop("round-closed");
          stopped++;
        }
      }
      const dir = join(layout.uploads, federationId, String(round));
      await rm(dir, { recursive: true, force: true });
      return stopped;
    },
    checkCommitted: (u) => pending.checkCommitted(u),
    journaled: (u) => pending.journaled(u),
    async closeAll() {
      await Promise.all([...active.values()].map((s) => s.stop("store-closed")));
    },
  };
}
