/**
 * The file store's `UploadSink`: positioned writes into a `.partial` file,
 * serialised per sink; `commit` fsyncs, verifies size and sha256, and hands
 * the file to the store to move into place. A sink that starts at byte 0
 * hashes the bytes as it writes them (as they arrive, so the commit does
 * not read the whole file back); one resumed mid-file hashes the file at
 * commit, since the bytes before its offset came through another sink.
 *
 * Every {@link FLUSH_STEP} bytes the sink starts an `fdatasync` in the
 * background (one at a time), so the disk takes the bytes while the rest
 * arrive and the commit's fsync finds little left: with 32 uploads ending
 * together, their commits otherwise wait on every byte of all of them at
 * once. A background flush that fails fails the commit (Linux reports a
 * failed writeback once: a later fsync could succeed without the bytes).
 */
import { createHash } from "node:crypto";
import { type FileHandle, unlink } from "node:fs/promises";
import type { CommittedUpload, ExpectedUpload, UploadKey, UploadSink } from "../core/store.ts";
import { StoreIntegrityError, UpdateConflictError, UploadStoppedError } from "../core/store-errors.ts";
import { hashFile, unlinkIfExists, writeFully } from "./fs-util.ts";

/** Bytes written between a sink's background flushes (8 MiB). */
export const FLUSH_STEP = 8 * 1024 * 1024;

/** What a sink needs from its store. */
export interface SinkHooks {
  /** Moves the verified partial at `path` to the accepted location (conflict checks, rename, fsyncs). */
  accept(path: string): Promise<CommittedUpload>;
  /** Called once when the sink stops being the key's active sink. */
  release(): void;
}

/** Why the store takes a sink away from its upload. */
export type SinkStop = "superseded" | UploadStoppedError["reason"];

/** The error every call of a sink stopped for `why` fails with. */
export function stoppedSinkError(key: UploadKey, why: SinkStop): Error {
  return why === "superseded"
    ? new UpdateConflictError(key, "superseded by a newer upload of the same key")
    : new UploadStoppedError(key, why);
}

/** An `UploadSink` the store can take away from a client that reconnected. */
export interface ManagedSink extends UploadSink {
  /**
   * Waits for the sink's pending operation and closes it. Later calls fail
   * with `UpdateConflictError` when `why` is `superseded` (a newer upload of
   * the key took over), else with `UploadStoppedError` naming `why`.
   */
  stop(why: SinkStop): Promise<void>;
}

/** Parameters of `createUploadSink`. */
export interface SinkOptions {
  readonly key: UploadKey;
  readonly expected: ExpectedUpload;
  /** The `.partial` file, open read-write as `handle`. */
  readonly path: string;
  readonly handle: FileHandle;
  /** Durable bytes already in the partial. */
  readonly offset: number;
  readonly hooks: SinkHooks;
}

/** Throws `StoreIntegrityError("size-overrun")` when `length` bytes at `offset` would pass the declared size. */
export function checkFits(key: UploadKey, expected: ExpectedUpload, offset: number, length: number): void {
  if (offset + length > expected.size) {
    throw new StoreIntegrityError(
      "size-overrun",
      key,
      `${length} bytes at offset ${offset} would exceed the declared ${expected.size} bytes`,
    );
  }
}

/** The life of a sink: its operations one at a time, and how it ends. */
export interface SinkGate {
  /** Runs `fn` after the pending operation, unless the sink has ended (then its error). */
  serial<T>(fn: () => Promise<T>): Promise<T>;
  /** The sink is done (committed, closed or aborted). */
  finish(): void;
  /**
   * Stops an open sink for `why` once its pending operation is over;
   * resolves `false` (doing nothing) if it had already ended.
   */
  stop(why: SinkStop): Promise<boolean>;
}

/**
 * A gate for the sink of `key`; both stores' sinks run through one.
 *
 * @example
 * const gate = createSinkGate(key);
 * const write = (chunk) => gate.serial(() => append(chunk));
 */
export function createSinkGate(key: UploadKey): SinkGate {
  let state: "open" | "done" | "stopped" = "open";
  let stoppedBy: SinkStop = "superseded";
  let chain: Promise<unknown> = Promise.resolve();
  return {
    serial<T>(fn: () => Promise<T>): Promise<T> {
      const run = chain.then(() => {
        if (state === "stopped") throw stoppedSinkError(key, stoppedBy);
        if (state === "done") throw new Error("upload sink already committed, closed or aborted");
        return fn();
      });
      chain = run.catch(() => undefined);
      return run;
    },
    finish() {
      state = "done";
    },
    async stop(why) {
      if (state !== "open") return false;
      state = "stopped";
      stoppedBy = why;
      await chain;
      return true;
    },
  };
}

/**
 * A sink writing `options.path` from `options.offset`.
 *
 * @example
 * const sink = createUploadSink({ key, expected, path, handle, offset: 0, hooks });
 * await sink.write(chunk);
 * const { location } = await sink.commit();
 */
export function createUploadSink(options: SinkOptions): ManagedSink {
  const { key, expected, path, handle, hooks } = options;
  let offset = options.offset;
  /** The running sha256 of bytes 0…offset, when this sink wrote every one of them. */
  const running = offset === 0 ? createHash("sha256") : undefined;
  const gate = createSinkGate(key);
  const serial = gate.serial;
  /** The background flush under way, the offset it was started at, and the first one's failure. */
  let flushing: Promise<void> | undefined;
  let flushedAt = offset;
  let flushError: unknown;
  const flushBehind = () => {
    if (flushing !== undefined || offset - flushedAt < FLUSH_STEP) return;
    flushedAt = offset;
    flushing = handle
      .datasync()
      .catch((err: unknown) => {
        flushError ??= err;
      })
      .finally(() => {
        flushing = undefined;
      });
  };
  const finish = async (): Promise<void> => {
    gate.finish();
    hooks.release();
    await handle.close();
  };
  const reject = async (reason: "size-mismatch" | "sha256-mismatch", detail: string): Promise<never> => {
    await finish();
    await unlink(path);
    throw new StoreIntegrityError(reason, key, `${detail}; the partial upload was deleted, resend it`);
  };

  return {
    key,
    expected,
    path,
    get offset() {
      return offset;
    },
    write: (chunk) =>
      serial(async () => {
        checkFits(key, expected, offset, chunk.length);
        await writeFully(handle, chunk, offset);
        running?.update(chunk);
        offset += chunk.length;
        flushBehind();
      }),
    commit: () =>
      serial(async () => {
        if (offset < expected.size) {
          throw new StoreIntegrityError(
            "incomplete",
            key,
            `commit after ${offset} of ${expected.size} bytes; send the rest from offset ${offset}`,
          );
        }
        await flushing;
        if (flushError !== undefined) throw flushError;
        await handle.sync();
        const { size } = await handle.stat();
        if (size !== expected.size) {
          return reject("size-mismatch", `stored ${size} bytes, declared ${expected.size}`);
        }
        const sha256 = running !== undefined ? running.digest("hex") : await hashFile(handle, size);
        if (sha256 !== expected.sha256) {
          return reject(
            "sha256-mismatch",
            `sha256 of the received bytes is ${sha256}, declared ${expected.sha256}`,
          );
        }
        await handle.close();
        try {
          return await hooks.accept(path);
        } finally {
          gate.finish();
          hooks.release();
        }
      }),
    close: () => serial(finish),
    abort: () =>
      serial(async () => {
        await finish();
        await unlinkIfExists(path);
      }),
    async stop(why) {
      if (!(await gate.stop(why))) return;
      hooks.release();
      await handle.close().catch(() => undefined);
    },
  };
}

/**
 * A sink for an upload that is already committed or accepted: `offset` is
 * the full size, `write` rejects any byte, `commit` returns the stored upload.
 */
export function committedSink(key: UploadKey, expected: ExpectedUpload, stored: CommittedUpload): UploadSink {
  return {
    key,
    expected,
    offset: expected.size,
    async write(chunk) {
      if (chunk.length === 0) return;
      throw new StoreIntegrityError(
        "size-overrun",
        key,
        `already complete (${expected.size} bytes); ${chunk.length} more bytes refused`,
      );
    },
    commit: async () => stored,
    close: async () => undefined,
    abort: async () => undefined,
  };
}
