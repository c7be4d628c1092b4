/**
 * A manual clock for tests: time moves only when `advance` is called, which
 * fires every timer that falls due, in time order.
 */
import type { Cancel, Clock } from "../clock.ts";

/** A `Clock` whose time tests move by hand. */
export interface FakeClock extends Clock {
  /** Moves time forward by `ms` (≥ 0), firing due timers in order of their time. */
  advance(ms: number): void;
  /** Times of the timers still pending, ascending. */
  pending(): number[];
}

interface Timer {
  readonly at: number;
  readonly seq: number;
  readonly fn: () => void;
}

/**
 * A fake clock starting at `start` epoch ms.
 *
 * @example
 * const clock = createFakeClock(1_000);
 * clock.setTimer(1_500, () => console.log("due"));
 * clock.advance(500); // logs "due"
 */
export function createFakeClock(start = 0): FakeClock {
  let now = start;
  let seq = 0;
  const timers = new Set<Timer>();
  const next = (until: number): Timer | undefined => {
    let best: Timer | undefined;
    for (const t of timers) {
      if (t.at <= until && (best === undefined || t.at < best.at || (t.at === best.at && t.seq < best.seq))) {
        best = t;
      }
    }
    return best;
  };
  return {
    now: () => now,
    setTimer(at: number, fn: () => void): Cancel {
      const t = { at, seq: seq++, fn };
      timers.add(t);
      return () => {
        timers.delete(t);
      };
    },
    advance(ms: number): void {
      if (!(ms >= 0)) throw new RangeError(`cannot advance a fake clock by ${ms} ms`);
      const until = now + ms;
      for (let t = next(until); t !== undefined; t = next(until)) {
        timers.delete(t);
        now = Math.max(now, t.at);
        t.fn();
      }
      now = until;
    },
    pending: () => [...timers].map((t) => t.at).sort((a, b) => a - b),
  };
}
