/**
 * A coordinator-wide bound on upload streams being *read* at once. Each
 * stream being read holds a few chunk messages (the one being written, the
 * next one decoded, the one arriving): about 3 MiB with 1 MiB chunks, so
 * reading every client's stream at once makes the coordinator's memory grow
 * with the federation. Past the bound, an upload waits — first in, first
 * served — before its first message is read; HTTP/2 flow control then holds
 * its bytes on the client, and the waiting stream costs the coordinator one
 * stream receive window (256 KiB, `receive-windows.ts`). Total throughput is
 * the same: the bound is on concurrency, not on rate.
 *
 * @module
 */

/** Default {@link UploadGate} size: 32 uploads read at once. */
export const MAX_ACTIVE_UPLOADS = 32;

/** Where an {@link UploadGate} stands. */
export interface UploadGateState {
  /** Uploads being read now. */
  readonly active: number;
  /** Uploads waiting for their turn. */
  readonly waiting: number;
  /** The bound. */
  readonly limit: number;
}

/** A turn to read one upload; `release` is idempotent. */
export type UploadTurn = () => void;

/** The gate: {@link UploadGate.enter} resolves with a turn when one is free. */
export interface UploadGate {
  /**
   * Waits for a free turn. `cancelled` registers a callback run if the
   * stream goes away while it waits: the place in line is given up and the
   * promise rejects with that error. With `wait`, a place not served within
   * `wait.ms` is given up too, rejecting with `wait.error()`.
   */
  enter(
    cancelled?: (onCancel: (err: Error) => void) => void,
    wait?: { readonly ms: number; readonly error: () => Error },
  ): Promise<UploadTurn>;
  /** Counts, for logs and metrics. */
  state(): UploadGateState;
}

/**
 * A gate letting `limit` uploads be read at once.
 *
 * @example
 * const gate = uploadGate(32);
 * const release = await gate.enter();
 * try { await receive(); } finally { release(); }
 */
export function uploadGate(limit: number = MAX_ACTIVE_UPLOADS): UploadGate {
  if (!Number.isInteger(limit) || limit < 1) {
    throw new RangeError(`the number of uploads read at once must be a positive integer, got ${limit}`);
  }
  let active = 0;
  const line: Array<() => void> = [];

  const turn = (): UploadTurn => {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      active--;
      line.shift()?.();
    };
  };

  return {
    enter(cancelled, wait) {
      if (active < limit && line.length === 0) {
        active++;
        return Promise.resolve(turn());
      }
      return new Promise<UploadTurn>((resolve, reject) => {
        let timer: NodeJS.Timeout | undefined;
        const admit = () => {
          clearTimeout(timer);
          active++;
          resolve(turn());
        };
        const leave = (err: Error) => {
          const at = line.indexOf(admit);
          if (at < 0) return; // already admitted
          line.splice(at, 1);
          clearTimeout(timer);
          reject(err);
        };
        line.push(admit);
        cancelled?.(leave);
        if (wait !== undefined) timer = setTimeout(() => leave(wait.error()), wait.ms);
      });
    },
    state: () => ({ active, waiting: line.length, limit }),
  };
}
