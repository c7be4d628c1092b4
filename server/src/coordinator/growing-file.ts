/**
 * A file still being written, as a content check reads it: each read waits
 * until the bytes it needs are written (`advance`), so the check of an
 * update runs module by module while the update arrives instead of all at
 * once after its last byte.
 */

/** How far a growing file is written, and reads that wait for it. */
export interface GrowingFile {
  /** The first `bytes` bytes are written (a smaller value than before is ignored). */
  advance(bytes: number): void;
  /** The writing stopped: every wait, now and later, rejects with `reason`. */
  cancel(reason: Error): void;
  /** Resolves once the first `end` bytes are written. */
  until(end: number): Promise<void>;
}

/**
 * A growing file with its first `available` bytes written.
 *
 * @example
 * const file = growingFile(0);
 * const ready = file.until(4096);
 * file.advance(8192); // ready resolves
 */
export function growingFile(available: number): GrowingFile {
  let written = available;
  let stopped: Error | undefined;
  let waiting: { end: number; resolve(): void; reject(err: Error): void }[] = [];
  return {
    advance(bytes) {
      if (bytes <= written) return;
      written = bytes;
      const ready = waiting.filter((w) => w.end <= written);
      waiting = waiting.filter((w) => w.end > written);
      for (const w of ready) w.resolve();
    },
    cancel(reason) {
      stopped ??= reason;
      const all = waiting;
      waiting = [];
      for (const w of all) w.reject(reason);
    },
    until(end) {
      if (stopped !== undefined) return Promise.reject(stopped);
      if (end <= written) return Promise.resolve();
      return new Promise((resolve, reject) => waiting.push({ end, resolve, reject }));
    },
  };
}
