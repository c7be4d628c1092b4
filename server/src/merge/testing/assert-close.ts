/** Numeric comparison helpers for tests. */
import { AssertionError } from "node:assert";

/** Tolerances of {@link assertClose}: passes where `|actual − expected| ≤ atol + rtol · |expected|`. */
export interface CloseOptions {
  /** Relative tolerance; default `1e-9`. */
  readonly rtol?: number;
  /** Absolute tolerance; default `1e-12`. */
  readonly atol?: number;
  /** What is being compared, for the failure message; default `"value"`. */
  readonly what?: string;
}

/**
 * Asserts `|actual[e] − expected[e]| ≤ atol + rtol · |expected[e]|` for every
 * index (NaN passes only against NaN). On failure, the message names the worst
 * index (largest error relative to its tolerance), both values and how many
 * entries failed.
 */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  opts: CloseOptions = {},
): void {
  const rtol = opts.rtol ?? 1e-9;
  const atol = opts.atol ?? 1e-12;
  const what = opts.what ?? "value";
  if (actual.length !== expected.length) {
    throw new AssertionError({
      message: `${what}: length ${actual.length} differs from expected ${expected.length}`,
      actual: actual.length,
      expected: expected.length,
    });
  }
  let failures = 0;
  let worst = -1;
  let worstRatio = -1;
  for (let e = 0; e < actual.length; e++) {
    const a = actual[e];
    const x = expected[e];
    let ratio: number;
    if (Number.isNaN(a) || Number.isNaN(x))
      ratio = Number.isNaN(a) && Number.isNaN(x) ? 0 : Number.POSITIVE_INFINITY;
    else if (a === x) ratio = 0;
    else {
      const bound = atol + rtol * Math.abs(x);
      const err = Math.abs(a - x);
      ratio = bound > 0 ? err / bound : Number.POSITIVE_INFINITY;
      if (Number.isNaN(ratio)) ratio = Number.POSITIVE_INFINITY;
    }
    if (ratio > 1) {
      failures++;
      if (ratio > worstRatio) {
        worstRatio = ratio;
        worst = e;
      }
    }
  }
  if (failures > 0) {
    const a = actual[worst];
    const x = expected[worst];
    throw new AssertionError({
      message:
        `${what}: ${failures} of ${actual.length} entries not close (rtol ${rtol}, atol ${atol}); ` +
        `worst at index ${worst}: actual ${a}, expected ${x}, |diff| ${Math.abs(a - x)}`,
      actual: a,
      expected: x,
    });
  }
}

/**
 * Relative Frobenius error `‖actual − expected‖ / ‖expected‖`; the absolute
 * `‖actual − expected‖` when `expected` is all zeros.
 */
export function relFrobError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) {
    throw new Error(`relFrobError: lengths ${actual.length} and ${expected.length} differ`);
  }
  let diff2 = 0;
  let ref2 = 0;
  for (let e = 0; e < actual.length; e++) {
    diff2 += (actual[e] - expected[e]) ** 2;
    ref2 += expected[e] ** 2;
  }
  return ref2 === 0 ? Math.sqrt(diff2) : Math.sqrt(diff2 / ref2);
}
