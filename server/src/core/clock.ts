/**
 * Time as the round scheduler sees it: an injected clock with one-shot
 * timers, so the scheduler does no I/O and tests can advance time by hand.
 */

/** Cancels a timer; calling it after the timer fired, or twice, does nothing. */
export type Cancel = () => void;

/** Epoch-millisecond time and one-shot timers. */
export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
  /** Runs `fn` once at epoch ms `at`, or as soon as possible when `at` has passed. */
  setTimer(at: number, fn: () => void): Cancel;
}

/** Longest delay `setTimeout` accepts (about 24.8 days); longer timers are chained. */
const MAX_DELAY_MS = 2 ** 31 - 1;

/**
 * The real clock: `Date.now()` and `setTimeout`, unref'd so a pending round
 * deadline does not keep the process alive.
 *
 * @example
 * const scheduler = createRoundScheduler({ federation, clock: systemClock, initial, effects });
 */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(at, fn) {
    let handle: NodeJS.Timeout | undefined;
    let cancelled = false;
    const arm = (): void => {
      const delay = Math.max(0, at - Date.now());
      handle = setTimeout(
        () => {
          if (cancelled) return;
          if (Date.now() < at) arm();
          else fn();
        },
        Math.min(delay, MAX_DELAY_MS),
      );
      handle.unref();
    };
    arm();
    return () => {
      cancelled = true;
      if (handle !== undefined) clearTimeout(handle);
    };
  },
};
