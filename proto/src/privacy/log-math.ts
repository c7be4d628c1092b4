/**
 * Log-space arithmetic and `log erfc` in float64 for the privacy accountant:
 * sums and differences of numbers held as their logarithms, and the
 * complementary error function's logarithm, accurate far into its tail
 * (`erfc(x)` underflows past x ≈ 27; its logarithm does not).
 */

/** `log(exp(a) + exp(b))`. */
export function logAdd(a: number, b: number): number {
  const lo = Math.min(a, b);
  const hi = Math.max(a, b);
  if (lo === Number.NEGATIVE_INFINITY) return hi;
  return Math.log1p(Math.exp(lo - hi)) + hi;
}

/** `log(exp(a) − exp(b))` for `a ≥ b`; `-Infinity` when equal. */
export function logSub(a: number, b: number): number {
  if (a < b) throw new RangeError(`logSub: log-difference of ${a} and ${b} would be negative`);
  if (b === Number.NEGATIVE_INFINITY) return a;
  if (a === b) return Number.NEGATIVE_INFINITY;
  const d = Math.expm1(a - b);
  return Number.isFinite(d) ? Math.log(d) + b : a;
}

const LOG_SQRT_PI = 0.5 * Math.log(Math.PI);

/**
 * `erf(x)` for `0 ≤ x < 3` by the series
 * `2/√π · e^(−x²) · Σ 2ⁿ x^(2n+1) / (1·3·…·(2n+1))` (all terms positive: no cancellation).
 */
function erfSeries(x: number): number {
  let term = x;
  let sum = x;
  const x2 = x * x;
  for (let n = 1; n < 500; n++) {
    term *= (2 * x2) / (2 * n + 1);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return (2 / Math.sqrt(Math.PI)) * Math.exp(-x2) * sum;
}

/**
 * `log(√π · e^(x²) · erfc(x))` for `x ≥ 2` by the continued fraction
 * `1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …))))` (modified Lentz).
 */
function logScaledErfcTail(x: number): number {
  const tiny = 1e-300;
  let f = x;
  let c = x;
  let d = 0;
  for (let n = 1; n < 5000; n++) {
    const a = n / 2;
    d = x + a * d;
    d = d === 0 ? tiny : d;
    c = x + a / c;
    c = c === 0 ? tiny : c;
    d = 1 / d;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return -Math.log(f);
}

/**
 * `log(erfc(x))` for any finite `x`, to about 1e-14 relative.
 *
 * @example
 * logErfc(0); // 0 (erfc(0) = 1)
 * logErfc(30); // ≈ -903.97 (erfc(30) underflows in float64)
 */
export function logErfc(x: number): number {
  if (Number.isNaN(x)) return Number.NaN;
  if (x < 0) return Math.log(2 - Math.exp(logErfc(-x)));
  if (x < 2) return Math.log1p(-erfSeries(x));
  return -x * x - LOG_SQRT_PI + logScaledErfcTail(x);
}
