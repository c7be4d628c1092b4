/**
 * Byte ranges of a bucket's objects, read without the rest: an object's
 * chunks are messages of the bucket's stream, so its chunk sequences are
 * listed once with a headers-only consumer (no chunk bodies), and only the
 * chunks that cover a wanted range are fetched, by sequence (direct gets,
 * several at once). They are written
 * at their place in a sparse local copy, so a tensor's offset in the object
 * is its offset in the copy. A merge worker reads the factors of one module
 * of each client this way, instead of every client's whole update.
 */
import { mkdir, open } from "node:fs/promises";
import { dirname, join } from "node:path";
import { StoreCorruptError } from "../core/store-errors.ts";
import { writeFully } from "../store/fs-util.ts";
import type { KeyedMutex } from "../store/keyed-mutex.ts";
import type { JetStreamHandles } from "./setup.ts";
import { readStream } from "./stream-reader.ts";
import { retryTransient } from "./transient.ts";

/** A range of an object's bytes. */
export interface ByteRange {
  readonly offset: number;
  readonly length: number;
}

/** Sparse local copies of objects, filled range by range. */
export interface ObjectRanges {
  /**
   * The path of object `name`'s sparse copy (at `relPath` under the root),
   * with at least `ranges` filled in; `size` is the object's size as the
   * caller knows it (a different size is refused).
   */
  fill(name: string, size: number, relPath: readonly string[], ranges: readonly ByteRange[]): Promise<string>;
  /** Forgets object `name`'s copy (after its file was removed). */
  forget(name: string): void;
  /** Bytes fetched so far (chunk bodies), for logs and benchmarks. */
  fetchedBytes(): number;
}

interface Known {
  readonly path: string;
  readonly chunkSize: number;
  readonly chunks: number;
  readonly seqs: number[];
  readonly have: Set<number>;
}

/** Chunk requests in flight at once, all objects together. */
const PARALLEL_CHUNKS = 32;

/** Default object chunk size of nats.js (used when an object's meta does not say). */
const DEFAULT_CHUNK = 128 * 1024;

/**
 * Ranges of `bucket`'s objects under `root`; `locked` serialises the filling of one copy.
 *
 * @example
 * const path = await ranges.fill("updates/f/1/c/u1", size, ["sparse", "f", "1", "c"], [{ offset: 96, length: 4096 }]);
 */
export function createObjectRanges(
  h: JetStreamHandles,
  bucket: string,
  root: string,
  locked: KeyedMutex,
): ObjectRanges {
  const known = new Map<string, Known>();
  const stream = `OBJ_${bucket}`;
  let fetched = 0;
  // A slot per chunk request in flight.
  let inFlight = 0;
  const waiting: (() => void)[] = [];
  const slot = async () => {
    while (inFlight >= PARALLEL_CHUNKS) await new Promise<void>((r) => waiting.push(r));
    inFlight++;
  };
  const release = () => {
    inFlight--;
    waiting.shift()?.();
  };
  const getChunk = async (seq: number) => {
    await slot();
    try {
      // A direct get: the chunk's bytes as they are (the API's get answers base64 in JSON).
      return await retryTransient(() => h.jsm.direct.getMessage(stream, { seq }));
    } finally {
      release();
    }
  };

  const learn = async (name: string, size: number, relPath: readonly string[]): Promise<Known> => {
    const info = await retryTransient(() => h.objects.info(name));
    if (info === null || info.deleted)
      throw new StoreCorruptError(`object ${name} of bucket ${bucket} is missing`, name);
    if (info.size !== size) {
      throw new StoreCorruptError(
        `object ${name} of bucket ${bucket} holds ${info.size} bytes, expected ${size}`,
        name,
      );
    }
    const subject = `$O.${bucket}.C.${info.nuid}`;
    const seqs: number[] = [];
    if (info.size > 0) {
      const last = await retryTransient(() => h.jsm.streams.getMessage(stream, { last_by_subj: subject }));
      if (last !== null) {
        for await (const m of readStream(h.bulk.js, {
          stream,
          subject,
          fromSeq: 1,
          untilSeq: last.seq,
          headersOnly: true,
        })) {
          seqs.push(m.seq);
        }
      }
    }
    if (seqs.length !== info.chunks) {
      throw new StoreCorruptError(
        `object ${name} of bucket ${bucket} lists ${seqs.length} of its ${info.chunks} chunks`,
        name,
      );
    }
    const path = join(root, ...relPath);
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    const handle = await open(path, "w", 0o600);
    await handle.truncate(info.size);
    await handle.close();
    return {
      path,
      chunkSize: info.options?.max_chunk_size ?? DEFAULT_CHUNK,
      chunks: info.chunks,
      seqs,
      have: new Set(),
    };
  };

  return {
    fill: (name, size, relPath, ranges) =>
      locked(`ranges:${name}`, async () => {
        let k = known.get(name);
        if (k === undefined) {
          k = await learn(name, size, relPath);
          known.set(name, k);
        }
        const wanted = new Set<number>();
        for (const r of ranges) {
          if (r.length <= 0) continue;
          const first = Math.floor(r.offset / k.chunkSize);
          const last = Math.floor((r.offset + r.length - 1) / k.chunkSize);
          for (let c = first; c <= Math.min(last, k.chunks - 1); c++) if (!k.have.has(c)) wanted.add(c);
        }
        if (wanted.size === 0) return k.path;
        const handle = await open(k.path, "r+");
        const kk = k;
        const list = [...wanted].sort((x, y) => x - y);
        let next = 0;
        const lane = async () => {
          while (next < list.length) {
            const c = list[next++];
            const m = await getChunk(kk.seqs[c]);
            const expected = c < kk.chunks - 1 ? kk.chunkSize : size - c * kk.chunkSize;
            if (m === null || m.data.length !== expected) {
              throw new StoreCorruptError(
                `chunk ${c} of object ${name} (bucket ${bucket}) is ${m === null ? "missing" : `${m.data.length} bytes, expected ${expected}`}`,
                name,
              );
            }
            await writeFully(handle, m.data, c * kk.chunkSize);
            fetched += m.data.length;
            kk.have.add(c);
          }
        };
        try {
          // Several chunks in flight: each is a request of its own.
          await Promise.all(Array.from({ length: Math.min(PARALLEL_CHUNKS, list.length) }, lane));
        } finally {
          await handle.close();
        }
        return k.path;
      }),
    forget: (name) => {
      known.delete(name);
    },
    fetchedBytes: () => fetched,
  };
}
