/**
 * Objects of the bucket copied into a local cache directory, verified, so
 * the merge reads tensors with positioned reads (and worker threads read the
 * same file) as with the file store. Everything cached is immutable — a
 * committed update, a content-addressed adapter — so a verified copy stays
 * valid; a copy is written under a temporary name and renamed into place.
 */
import { createHash } from "node:crypto";
import { mkdir, open, rename, rm, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { ObjectInfo, ObjectStore } from "@nats-io/obj";
import { StoreCorruptError } from "../core/store-errors.ts";
import { errnoCode, writeFully } from "../store/fs-util.ts";
import type { KeyedMutex } from "../store/keyed-mutex.ts";
import { tempName } from "../store/paths.ts";
import type { JetStreamHandles } from "./setup.ts";
import { readStream } from "./stream-reader.ts";
import { retryTransient, TRANSIENT_BUDGET_MS } from "./transient.ts";

/**
 * The chunks of object `info` of `bucket`, in order, read with a pull
 * consumer: nats.js's push-based object `get` stalls for tens of seconds when
 * several objects are fetched at once over one connection, or while a
 * cluster node is down.
 */
export async function* objectChunks(
  h: JetStreamHandles,
  bucket: string,
  info: ObjectInfo,
): AsyncGenerator<Uint8Array> {
  if (info.size === 0) return;
  const subject = `$O.${bucket}.C.${info.nuid}`;
  const stream = `OBJ_${bucket}`;
  const last = await retryTransient(() => h.jsm.streams.getMessage(stream, { last_by_subj: subject }));
  if (last === null) return;
  for await (const m of readStream(h.bulk.js, { stream, subject, fromSeq: 1, untilSeq: last.seq }))
    yield m.data;
}

/**
 * Object `name` of `bucket` as bytes (for small objects), or `null` when
 * there is none; `objects` is that bucket (default: the store's).
 */
export function readObject(
  h: JetStreamHandles,
  bucket: string,
  name: string,
  objects: ObjectStore = h.objects,
): Promise<Uint8Array | null> {
  return retryTransient(async () => {
    const info = await objects.info(name);
    if (info === null || info.deleted) return null;
    if (info.chunks <= 1) {
      // One chunk (a config, a round record): a direct get, no consumer.
      const subject = `$O.${bucket}.C.${info.nuid}`;
      const m =
        info.size === 0 ? null : await h.jsm.streams.getMessage(`OBJ_${bucket}`, { last_by_subj: subject });
      return m === null ? new Uint8Array(0) : m.data;
    }
    const out = new Uint8Array(info.size);
    let at = 0;
    for await (const chunk of objectChunks(h, bucket, info)) {
      out.set(chunk, at);
      at += chunk.length;
    }
    return out;
  });
}

/** What a cached object must be. */
export interface ObjectExpectation {
  readonly size: number;
  /** Lower-case hex sha256. */
  readonly sha256: string;
}

/** A stored object by name, with what its bytes must be. */
export interface StoredObjectRef extends ObjectExpectation {
  readonly name: string;
}

/** The local copies of a bucket's objects. */
export interface ObjectCache {
  /** The path of object `name`'s verified copy at `relPath` under the cache, fetched first if needed. */
  fetch(name: string, relPath: readonly string[], expected: ObjectExpectation): Promise<string>;
  /** Writes `bytes` (which are object `name`, already stored) as its copy at `relPath`. */
  keep(relPath: readonly string[], bytes: Uint8Array): Promise<string>;
}

async function sizeOf(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch (err) {
    if (errnoCode(err) === "ENOENT") return undefined;
    throw err;
  }
}

/**
 * A cache of the objects of `h`'s bucket `bucket` under `root`; `locked` serialises fetches of one path.
 *
 * @example
 * const path = await cache.fetch("updates/f/1/c/u1", ["updates", "f", "1", "c.safetensors"], { size, sha256 });
 */
export function createObjectCache(
  h: JetStreamHandles,
  bucket: string,
  root: string,
  locked: KeyedMutex,
): ObjectCache {
  const objects = h.objects;
  const place = async (relPath: readonly string[], write: (temp: string) => Promise<void>) => {
    const path = join(root, ...relPath);
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    const temp = join(dirname(path), tempName(relPath.at(-1) ?? "object"));
    try {
      await write(temp);
      await rename(temp, path);
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
    return path;
  };

  return {
    fetch: (name, relPath, expected) =>
      locked(`cache:${relPath.join("/")}`, async () => {
        const path = join(root, ...relPath);
        if ((await sizeOf(path)) === expected.size) return path;
        // A read cut by a node going down starts over.
        return retryTransient(
          () =>
            place(relPath, async (temp) => {
              const info = await retryTransient(() => objects.info(name));
              if (info === null || info.deleted) {
                throw new StoreCorruptError(`object ${name} of bucket ${bucket} is missing`, name);
              }
              const hash = createHash("sha256");
              const handle = await open(temp, "w", 0o600);
              let at = 0;
              try {
                for await (const chunk of objectChunks(h, bucket, info)) {
                  hash.update(chunk);
                  await writeFully(handle, chunk, at);
                  at += chunk.length;
                }
                await handle.sync();
              } finally {
                await handle.close();
              }
              const sha256 = hash.digest("hex");
              if (at !== expected.size || sha256 !== expected.sha256) {
                throw new StoreCorruptError(
                  `object ${name} of bucket ${bucket} is ${at} bytes with sha256 ${sha256}, expected ${expected.size} bytes with sha256 ${expected.sha256}`,
                  name,
                );
              }
            }),
          2 * TRANSIENT_BUDGET_MS,
        );
      }),
    keep: (relPath, bytes) =>
      locked(`cache:${relPath.join("/")}`, () =>
        place(relPath, async (temp) => {
          const handle = await open(temp, "w", 0o600);
          try {
            await writeFully(handle, bytes, 0);
          } finally {
            await handle.close();
          }
        }),
      ),
  };
}
