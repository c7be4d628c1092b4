/**
 * FR-Merging's high-pass filter (papers/FREE-Merging.txt), with the filter
 * this project chose (MERGE-MATH.md "FR-Merging"): a 2-D DFT of the whole
 * task vector, removal of a centred low-frequency rectangle
 * `band_rows × band_cols` covering ≈ a fraction `c` of the coefficients, and
 * the real part of the normalised inverse DFT. Implemented with an explicit
 * naive DFT (no FFT, no projections) so it can check the factored engine.
 */
import { Matrix } from "ml-matrix";
import type { ModuleGroup } from "../types.ts";
import { fromWeights } from "./from-dense.ts";
import { denseTaskVectors, frob2, weightedSum } from "./task-vectors.ts";

/** Signed frequency of DFT index `k` on an axis of length `m`: `k` if `k ≤ m/2`, else `k − m`. */
export function signedFrequency(k: number, m: number): number {
  return k <= m / 2 ? k : k - m;
}

/**
 * The low band of an axis of length `m` for cutoff `c ∈ [0, 1)`: empty for
 * `c = 0`; otherwise `K = max(0, floor((√c · m − 1) / 2))`, clamped to
 * `K ≤ floor((m − 1) / 2)` (a no-op for `c < 1`, kept as the definition
 * states it), and the band is `{k : |f(k)| ≤ K}` (`2K + 1` indices,
 * ascending). The Nyquist index `m/2` (even `m`) is never in the band.
 *
 * @throws if `c ∉ [0, 1)` or `m` is not a positive integer.
 */
export function lowBand(m: number, c: number): number[] {
  if (!Number.isInteger(m) || m < 1)
    throw new Error(`lowBand: axis length must be a positive integer, got ${m}`);
  if (!(c >= 0 && c < 1)) throw new Error(`lowBand: cutoff must be in [0, 1), got ${c}`);
  if (c === 0) return [];
  const kk = Math.min(Math.max(0, Math.floor((Math.sqrt(c) * m - 1) / 2)), Math.floor((m - 1) / 2));
  const band: number[] = [];
  for (let k = 0; k < m; k++) if (Math.abs(signedFrequency(k, m)) <= kk) band.push(k);
  return band;
}

/** A complex `m × n` array as separate real and imaginary `Matrix`es. */
export interface ComplexMatrix {
  readonly re: Matrix;
  readonly im: Matrix;
}

/** `e^{sign · 2πi · (k·p mod m) / m}` as `[cos, sin]`, reducing `k·p` modulo `m` first for accuracy. */
function twiddle(k: number, p: number, m: number, sign: 1 | -1): [number, number] {
  const angle = (sign * 2 * Math.PI * ((k * p) % m)) / m;
  return [Math.cos(angle), Math.sin(angle)];
}

/**
 * Naive 2-D DFT, `F[k][l] = Σ_{p,q} X[p][q] e^{∓2πi(kp/m + lq/n)}` (forward: `−`,
 * unnormalised; inverse: `+`, times `1/(mn)`). The double sum is evaluated as
 * two nested 1-D sums, `Σ_p e^{∓2πikp/m} (Σ_q X[p][q] e^{∓2πilq/n})`, which is
 * the same arithmetic expression with the `p`-independent factor pulled out.
 */
export function dft2(x: ComplexMatrix, inverse = false): ComplexMatrix {
  const m = x.re.rows;
  const n = x.re.columns;
  const sign = inverse ? 1 : -1;
  // Along q (columns) for every row p: G[p][l] = Σ_q X[p][q] e^{∓2πi lq/n}.
  const gRe = Matrix.zeros(m, n);
  const gIm = Matrix.zeros(m, n);
  for (let p = 0; p < m; p++) {
    for (let l = 0; l < n; l++) {
      let re = 0;
      let im = 0;
      for (let q = 0; q < n; q++) {
        const [c, s] = twiddle(l, q, n, sign);
        const xr = x.re.get(p, q);
        const xi = x.im.get(p, q);
        re += xr * c - xi * s;
        im += xr * s + xi * c;
      }
      gRe.set(p, l, re);
      gIm.set(p, l, im);
    }
  }
  // Along p (rows): F[k][l] = Σ_p G[p][l] e^{∓2πi kp/m}.
  const norm = inverse ? 1 / (m * n) : 1;
  const fRe = Matrix.zeros(m, n);
  const fIm = Matrix.zeros(m, n);
  for (let k = 0; k < m; k++) {
    for (let l = 0; l < n; l++) {
      let re = 0;
      let im = 0;
      for (let p = 0; p < m; p++) {
        const [c, s] = twiddle(k, p, m, sign);
        const gr = gRe.get(p, l);
        const gi = gIm.get(p, l);
        re += gr * c - gi * s;
        im += gr * s + gi * c;
      }
      fRe.set(k, l, re * norm);
      fIm.set(k, l, im * norm);
    }
  }
  return { re: fRe, im: fIm };
}

/**
 * The low-frequency mask `L_rows ⊗ L_cols` (1 inside the removed rectangle
 * `lowBand(m, c) × lowBand(n, c)`, 0 elsewhere).
 */
export function lowMask(m: number, n: number, cutoff: number): Matrix {
  const mask = Matrix.zeros(m, n);
  const cols = lowBand(n, cutoff);
  for (const k of lowBand(m, cutoff)) for (const l of cols) mask.set(k, l, 1);
  return mask;
}

/**
 * FR-Merging high-pass filter (our definition): `X' = real(IDFT2(DFT2(X) ⊙ (1 − mask)))`
 * with `mask = lowMask(m, n, cutoff)`; `cutoff = 0` is the identity.
 */
export function highPassDense(x: Matrix, cutoff: number): Matrix {
  const m = x.rows;
  const n = x.columns;
  const mask = lowMask(m, n, cutoff);
  const f = dft2({ re: x, im: Matrix.zeros(m, n) });
  const keptRe = Matrix.zeros(m, n);
  const keptIm = Matrix.zeros(m, n);
  for (let k = 0; k < m; k++) {
    for (let l = 0; l < n; l++) {
      const keep = 1 - mask.get(k, l);
      keptRe.set(k, l, f.re.get(k, l) * keep);
      keptIm.set(k, l, f.im.get(k, l) * keep);
    }
  }
  return dft2({ re: keptRe, im: keptIm }, true).re;
}

/** How {@link frDense} combines the filtered task vectors. */
export type FrCombine = "mean" | "sum" | "from";

/** Options of {@link frDense}. */
export interface FrDenseOptions {
  /** Fraction `c ∈ [0, 1)` of lowest frequencies to remove. */
  readonly cutoff: number;
  /** `mean` (`1/n`), `sum` (1 each) or `from` (FroM weights of the filtered matrices). */
  readonly combine: FrCombine;
  /** FroM exponent, required for `combine: "from"`. */
  readonly k?: number;
  /** Final multiplier; default 1. */
  readonly scale?: number;
}

/** Result of {@link frDense}. */
export interface FrDenseResult {
  /** `scale · Σ w_i Θ'_i`. */
  readonly merged: Matrix;
  /** The filtered task vectors `Θ'_i`. */
  readonly filtered: Matrix[];
  /** The combination weights `w_i` (before `scale`). */
  readonly weights: number[];
}

/**
 * FR-Merging, dense: `Θ'_i = highPassDense(Θ_i, cutoff)`, then
 * `merged = scale · Σ w_i Θ'_i` with `w` uniform (`mean`), all ones (`sum`) or
 * FroM's `ŵ` from `‖Θ'_i‖_F` (`from`, FroM Eq. 5 with the zero-norm rule of
 * {@link fromWeights}).
 */
export function frDense(module: ModuleGroup, opts: FrDenseOptions): FrDenseResult {
  const filtered = denseTaskVectors(module).map((t) => highPassDense(t, opts.cutoff));
  const n = filtered.length;
  let weights: number[];
  if (opts.combine === "mean") weights = filtered.map(() => 1 / n);
  else if (opts.combine === "sum") weights = filtered.map(() => 1);
  else {
    if (opts.k === undefined) throw new Error('fr: combine "from" needs k');
    weights = fromWeights(
      filtered.map((t) => Math.sqrt(frob2(t))),
      opts.k,
    );
  }
  const scale = opts.scale ?? 1;
  return {
    merged: weightedSum(
      filtered,
      weights.map((w) => scale * w),
    ),
    filtered,
    weights,
  };
}
