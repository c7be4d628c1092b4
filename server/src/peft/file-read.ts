/** Positioned reads of files, the one loop every lazy reader uses (and its synchronous twin, for merge workers). */
import { closeSync, openSync, readSync } from "node:fs";
import type { FileHandle } from "node:fs/promises";

/**
 * Reads `length` bytes at `position` of `handle` (fewer only at the end of
 * the file) into a fresh buffer.
 */
export async function readAt(handle: FileHandle, position: number, length: number): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(out, done, length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done === length ? out : out.subarray(0, done);
}

/**
 * Fills `into` from `position` of the open file descriptor `fd`, blocking;
 * returns the bytes read (fewer than `into.length` only at the end of the file).
 */
export function readAtSync(fd: number, position: number, into: Uint8Array): number {
  let done = 0;
  while (done < into.length) {
    const n = readSync(fd, into, done, into.length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

/** Files opened for synchronous reads once each, by path. */
export interface OpenFiles {
  /** The descriptor of `path`, opened read-only the first time it is asked for. */
  fd(path: string): number;
  /** Closes every file opened. */
  close(): void;
}

/**
 * A set of files read synchronously (a module's factors in its clients' files).
 *
 * @example
 * const files = openFiles();
 * try { readAtSync(files.fd(path), offset, into); } finally { files.close(); }
 */
export function openFiles(): OpenFiles {
  const fds = new Map<string, number>();
  return {
    fd(path) {
      let fd = fds.get(path);
      if (fd === undefined) {
        fd = openSync(path, "r");
        fds.set(path, fd);
      }
      return fd;
    },
    close() {
      for (const fd of fds.values()) closeSync(fd);
      fds.clear();
    },
  };
}
