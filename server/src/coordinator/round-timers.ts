/**
 * A round scheduler's timers: each fires its handler on the scheduler's
 * serial queue at a clock time; a handler that fails (the journal was down,
 * say) is reported and tried again `RETRY_MS` later, so a deadline is never
 * lost to a transient fault.
 */
import type { Clock } from "../core/clock.ts";
import type { SerialQueue } from "./serial-queue.ts";

/** Delay before a timer transition that failed (e.g. the journal was down) is retried. */
export const RETRY_MS = 1_000;

/** The armed timers of one scheduler. */
export interface RoundTimers {
  /** Runs `handler` on the queue at `at`; a failure is reported and retried after `RETRY_MS`. */
  arm(at: number, handler: () => Promise<void>): void;
  /** Cancels every armed timer. */
  cancelAll(): void;
  /** Cancels every timer; later arms and firings do nothing. */
  stop(): void;
}

/** Timers on `clock` whose handlers run on `queue`. */
export function createRoundTimers(
  clock: Clock,
  queue: SerialQueue,
  reportError: (err: unknown) => void,
): RoundTimers {
  const cancels = new Set<() => void>();
  let stopped = false;
  const cancelAll = (): void => {
    for (const cancel of cancels) cancel();
    cancels.clear();
  };
  const arm = (at: number, handler: () => Promise<void>): void => {
    const fire = (): void => {
      if (stopped) return;
      queue.run(handler).catch((err: unknown) => {
        reportError(err);
        if (!stopped) cancels.add(clock.setTimer(clock.now() + RETRY_MS, fire));
      });
    };
    if (!stopped) cancels.add(clock.setTimer(at, fire));
  };
  return {
    arm,
    cancelAll,
    stop() {
      stopped = true;
      cancelAll();
    },
  };
}
