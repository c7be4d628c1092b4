/**
 * Scalar helpers and argument checks shared by the decompositions.
 */
import type { Mat } from "./mat.ts";

/**
 * `√(a² + b²)` without destructive overflow or underflow (cheaper than `Math.hypot`).
 * Dense equation: `hypot(a, b) = √(a² + b²)`.
 */
export function hypot(a: number, b: number): number {
  const x = Math.abs(a);
  const y = Math.abs(b);
  if (x > y) {
    const r = y / x;
    return x * Math.sqrt(1 + r * r);
  }
  if (y === 0) return 0;
  const r = x / y;
  return y * Math.sqrt(1 + r * r);
}

/**
 * The Euclidean norm of `v[start..end)`, scaled so that it neither overflows nor underflows.
 * Dense equation: `‖v‖₂ = √(Σ_i v[i]²)`.
 */
export function norm2(v: Float64Array, start: number, end: number): number {
  let big = 0;
  for (let i = start; i < end; i++) {
    const a = Math.abs(v[i]);
    if (a > big) big = a;
  }
  if (big === 0 || !Number.isFinite(big)) return big;
  const inv = 1 / big;
  let s = 0;
  for (let i = start; i < end; i++) {
    const t = v[i] * inv;
    s += t * t;
  }
  return big * Math.sqrt(s);
}

/**
 * Throws a `RangeError` naming `what` unless every entry is finite.
 * Dense equation: `∀ i, j: M[i][j] ∈ ℝ`.
 */
export function assertFinite(what: string, m: Mat): void {
  const d = m.data;
  for (let i = 0; i < d.length; i++) {
    if (!Number.isFinite(d[i])) {
      const r = Math.floor(i / m.cols);
      throw new RangeError(`${what}: entry (${r}, ${i - r * m.cols}) is ${d[i]}`);
    }
  }
}

/**
 * Throws a `RangeError` naming `what` unless the matrix is square.
 * Dense equation: `rows(M) = cols(M)`.
 */
export function assertSquare(what: string, m: Mat): void {
  if (m.rows !== m.cols) throw new RangeError(`${what}: matrix is ${m.rows}×${m.cols}, not square`);
}

/**
 * Dot product of two strided-by-one runs, with four independent accumulators
 * (JS engines never reassociate, so one accumulator is add-latency bound).
 * Dense equation: `Σ_{i<len} x[xo + i] · y[yo + i]`.
 */
export function dot(x: Float64Array, xo: number, y: Float64Array, yo: number, len: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let i = 0;
  for (; i + 3 < len; i += 4) {
    s0 += x[xo + i] * y[yo + i];
    s1 += x[xo + i + 1] * y[yo + i + 1];
    s2 += x[xo + i + 2] * y[yo + i + 2];
    s3 += x[xo + i + 3] * y[yo + i + 3];
  }
  for (; i < len; i++) s0 += x[xo + i] * y[yo + i];
  return s0 + s1 + (s2 + s3);
}

/**
 * In-place `y ← y + α x` over a run of `len` entries.
 * Dense equation: `y[yo + i] += α · x[xo + i]` for `i < len`.
 */
export function axpy(
  alpha: number,
  x: Float64Array,
  xo: number,
  y: Float64Array,
  yo: number,
  len: number,
): void {
  for (let i = 0; i < len; i++) y[yo + i] += alpha * x[xo + i];
}

/**
 * Powers of two `(f₁, f₂)` that bring a matrix whose largest magnitude is
 * `maxAbs` to order one, or `null` when it already is safely in range.
 * The factor is split in two so that it never overflows (subnormal
 * `maxAbs`), and multiplying by powers of two is exact.
 * Dense equation: `f₁ · f₂ · maxAbs ∈ [1, 2)`.
 */
function rescaleFactors(maxAbs: number): readonly [number, number] | null {
  if (maxAbs === 0 || (maxAbs >= 2 ** -200 && maxAbs <= 2 ** 200)) return null;
  const k = -Math.floor(Math.log2(maxAbs));
  const k1 = Math.trunc(k / 2);
  return [2 ** k1, 2 ** (k - k1)];
}

/**
 * Scales `x` in place so that its largest magnitude is of order one when it
 * is extreme (below `2⁻²⁰⁰` or above `2²⁰⁰`), and returns the factor to undo it
 * with (1 when nothing was done; always a power of two, applied in two exact steps).
 * Dense equation: `x ← x / u` with `u` the returned factor.
 */
export function rescaleInPlace(x: Float64Array): number {
  let big = 0;
  for (let i = 0; i < x.length; i++) {
    const a = Math.abs(x[i]);
    if (a > big) big = a;
  }
  const f = rescaleFactors(big);
  if (f === null) return 1;
  const [f1, f2] = f;
  for (let i = 0; i < x.length; i++) x[i] = x[i] * f1 * f2;
  return 1 / f1 / f2;
}
