/**
 * Fair turns for uploads: the coordinator reads a bounded number of upload
 * streams at once (`upload-gate.ts`), so a few clients that trickle their
 * bytes could hold every turn while an honest upload waits. Two rules prevent
 * it, both answered `RESOURCE_EXHAUSTED` `UPLOAD_DEFERRED` (the bytes received
 * are kept; the SDKs resume later):
 *
 * - an upload holding a turn while others wait must have sent at least
 *   `minBytesPerSec` over the last `windowMs`, or it yields its turn;
 * - an upload waits at most `maxWaitMs` for a turn.
 *
 * So an upload waits at most `windowMs` plus a check interval behind uploads
 * slower than the minimum, and never more than `maxWaitMs` in all.
 */

/** The rules (see the module comment). */
export interface UploadFairness {
  /** Minimum rate of an upload holding a turn while others wait, bytes/s (0: no minimum). */
  readonly minBytesPerSec: number;
  /** Window the rate is measured over, ms. */
  readonly windowMs: number;
  /** Longest wait for a turn, ms. */
  readonly maxWaitMs: number;
}

/** The defaults: 64 KiB/s over 10 s, at most 120 s of waiting. */
export const DEFAULT_UPLOAD_FAIRNESS: UploadFairness = {
  minBytesPerSec: 64 * 1024,
  windowMs: 10_000,
  maxWaitMs: 120_000,
};

/** Watches one upload's rate while it holds a turn. */
export interface RateWatch {
  /** Counts bytes received. */
  received(bytes: number): void;
  /**
   * Calls `listener` with `onSlow`'s error once the upload is found too slow
   * while others wait (at once if it already was); returns what stops the
   * listening. A listener is held only until then, so each wait for a
   * message can listen without the watch keeping what it waited for.
   */
  whenSlow(listener: (err: Error) => void): () => void;
  stop(): void;
}

/**
 * Starts watching an upload that just got its turn; `contended` says whether
 * others wait now.
 */
export function watchRate(
  rules: UploadFairness,
  contended: () => boolean,
  onSlow: (bytesInWindow: number) => Error,
): RateWatch {
  const started = Date.now();
  const samples: { at: number; total: number }[] = [{ at: started, total: 0 }];
  let total = 0;
  let slowError: Error | undefined;
  const listeners = new Set<(err: Error) => void>();
  const tick = Math.max(50, Math.min(1_000, rules.windowMs / 4));
  const timer =
    rules.minBytesPerSec > 0
      ? setInterval(() => {
          const now = Date.now();
          samples.push({ at: now, total });
          while (samples.length > 1 && samples[1].at <= now - rules.windowMs) samples.shift();
          if (now - started < rules.windowMs || !contended()) return;
          const inWindow = total - samples[0].total;
          if (inWindow < (rules.minBytesPerSec * rules.windowMs) / 1000) {
            clearInterval(timer);
            slowError = onSlow(inWindow);
            for (const listener of listeners) listener(slowError);
            listeners.clear();
          }
        }, tick)
      : undefined;
  timer?.unref();
  return {
    received(bytes) {
      total += bytes;
    },
    whenSlow(listener) {
      if (slowError !== undefined) {
        listener(slowError);
        return () => {};
      }
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    stop: () => clearInterval(timer),
  };
}
