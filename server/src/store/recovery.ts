/**
 * What the file store does at open, after replaying the journal: delete
 * what a crash left that must never be used (committed updates whose
 * `update-accepted` event was never journaled, temporary files, partial
 * uploads of rounds that are no longer open, merged adapters that no round
 * references) and check that every journaled update is on disk with its
 * size. Names it does not recognise are left alone.
 */
import type { Dirent } from "node:fs";
import { readdir, readFile, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { isValidId } from "@tributary/protocol";
import { roundEntry, type StoreState } from "../core/store.ts";
import { StoreCorruptError } from "../core/store-errors.ts";
import { errnoCode } from "./fs-util.ts";
import { acceptedUpdate } from "./journal-state.ts";
import type { StoreLayout } from "./paths.ts";

/** What recovery removed. */
export interface RecoveryReport {
  /** Committed update files with no `update-accepted` event. */
  readonly unjournaledUpdates: number;
  /** `uploads/<fed>/<round>` directories of rounds that are not open. */
  readonly staleUploadRounds: number;
  /** Temporary files and directories of interrupted writes. */
  readonly tempFiles: number;
  /** Merged adapters that neither the journal nor a round's record references (a merge cut before its round file). */
  readonly unreferencedAdapters: number;
}

/** Whether recovery removed anything (worth a log line). */
export function removedAnything(r: RecoveryReport): boolean {
  return r.unjournaledUpdates + r.staleUploadRounds + r.tempFiles + r.unreferencedAdapters > 0;
}

async function list(dir: string): Promise<Dirent[]> {
  try {
    return await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if (errnoCode(err) === "ENOENT" || errnoCode(err) === "ENOTDIR") return [];
    throw err;
  }
}

const SHA256 = /^[0-9a-f]{64}$/;

/** The content hash a round's record file names, if it reads as one. */
async function roundFileHash(path: string): Promise<string | undefined> {
  try {
    const hash = (JSON.parse(await readFile(path, "utf8")) as { contentHash?: unknown }).contentHash;
    return typeof hash === "string" && SHA256.test(hash) ? hash : undefined;
  } catch {
    return undefined;
  }
}

const isTemp = (name: string): boolean => name.includes("+") && name.endsWith(".tmp");
const roundOf = (name: string): number | undefined => (/^[1-9][0-9]*$/.test(name) ? Number(name) : undefined);

/** Cleans up `layout.root` against the replayed `state`; throws `StoreCorruptError` for a missing accepted update. */
export async function recover(layout: StoreLayout, state: StoreState): Promise<RecoveryReport> {
  let unjournaledUpdates = 0;
  let staleUploadRounds = 0;
  let tempFiles = 0;
  let unreferencedAdapters = 0;
  const remove = async (path: string): Promise<void> => rm(path, { recursive: true, force: true });

  for (const fed of await list(layout.updates)) {
    for (const round of await list(join(layout.updates, fed.name))) {
      const n = roundOf(round.name);
      if (n === undefined) continue;
      for (const f of await list(join(layout.updates, fed.name, round.name))) {
        const client = f.name.replace(/\.safetensors$/, "");
        if (client === f.name || !isValidId("client_id", client)) continue;
        if (acceptedUpdate(state, fed.name, n, client) === undefined) {
          await remove(join(layout.updates, fed.name, round.name, f.name));
          unjournaledUpdates++;
        }
      }
    }
  }
  for (const fed of await list(layout.uploads)) {
    for (const round of await list(join(layout.uploads, fed.name))) {
      const n = roundOf(round.name);
      if (n === undefined) continue;
      if (state.federations.get(fed.name)?.rounds.get(n)?.record.state !== "open") {
        await remove(join(layout.uploads, fed.name, round.name));
        staleUploadRounds++;
      }
    }
  }
  const referenced = new Set<string>();
  for (const fed of state.federations.values()) {
    for (const round of fed.rounds.values()) {
      if (round.record.resultHash !== undefined) referenced.add(round.record.resultHash);
    }
  }
  for (const fed of await list(layout.rounds)) {
    for (const entry of await list(join(layout.rounds, fed.name))) {
      if (isTemp(entry.name)) {
        await remove(join(layout.rounds, fed.name, entry.name));
        tempFiles++;
      } else if (entry.name.endsWith(".json")) {
        // Only a round the journal does not call merged can name an adapter it does not:
        // the file of a merge cut by a crash. The others are not read.
        const n = roundOf(entry.name.slice(0, -".json".length));
        if (n !== undefined && roundEntry(state, fed.name, n)?.record.resultHash !== undefined) continue;
        const hash = await roundFileHash(join(layout.rounds, fed.name, entry.name));
        if (hash !== undefined) referenced.add(hash);
      }
    }
  }
  for (const entry of await list(layout.adapters)) {
    if (isTemp(entry.name)) {
      await remove(join(layout.adapters, entry.name));
      tempFiles++;
    } else if (SHA256.test(entry.name) && !referenced.has(entry.name)) {
      await remove(join(layout.adapters, entry.name));
      unreferencedAdapters++;
    }
  }
  await checkAccepted(layout, state);
  return { unjournaledUpdates, staleUploadRounds, tempFiles, unreferencedAdapters };
}

async function checkAccepted(layout: StoreLayout, state: StoreState): Promise<void> {
  for (const fed of state.federations.values()) {
    for (const round of fed.rounds.values()) {
      for (const u of round.updates.values()) {
        const { dirs, file } = layout.update(u.federationId, u.round, u.clientId);
        const path = join(layout.root, ...dirs, file);
        const size = await stat(path).then(
          (s) => s.size,
          (err: unknown) => {
            if (errnoCode(err) === "ENOENT") return -1;
            throw err;
          },
        );
        if (size !== u.size) {
          const what = size < 0 ? "is missing" : `has ${size} bytes, journaled ${u.size}`;
          throw new StoreCorruptError(
            `${path}: accepted update "${u.updateId}" of federation "${u.federationId}" round ${u.round} client "${u.clientId}" ${what}`,
            path,
          );
        }
      }
    }
  }
}
