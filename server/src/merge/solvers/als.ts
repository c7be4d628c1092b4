/**
 * FroM's Algorithm 1 (alternating least squares with early stopping) in
 * factored form. Per iteration, with `M = Σ ŵ_i Θ_i = P D Q`:
 *   `B = (M Aᵀ)(A Aᵀ)⁺ = P (D Q Aᵀ)(A Aᵀ)⁺`            (Eq. 7)
 *   `A = (BᵀB)⁺ (Bᵀ M) = (BᵀB)⁺ (Bᵀ P D) Q`            (Eq. 8)
 * costing `O((dIn + dOut) R r)` instead of the paper's `O(n r (dIn² + dOut²))`.
 * The loss (Eq. 6 with normalised weights) comes from `r × r` traces:
 *   `Σ ŵ_i ‖BA − Θ_i‖² = tr(BᵀB · AAᵀ) − 2 tr((BᵀP D)(Q Aᵀ)) + Σ ŵ_i ‖Θ_i‖²`.
 */
import { columnCoefficients, type FactorStack } from "../factor-stack.ts";
import { type F32Mat, f32, gemm, gemmTN, transposeF32 } from "../kernels/device-matmul.ts";
import { type Mat, pinvSym } from "../linalg/index.ts";
import { normalAt, streamKey } from "../random.ts";
import type { MergedLora } from "../types.ts";

/** Options of Algorithm 1. */
export interface AlsOptions {
  readonly rank: number;
  /** Standard deviation of the Gaussian initialisation of `A`. */
  readonly sigma: number;
  /** Maximum iterations. */
  readonly iters: number;
  /** Also stop when the loss improves by at most `tol` relative (0: only the paper's rule). */
  readonly tol: number;
  readonly seed: number;
}

/** The best iterate and its loss. */
export interface AlsResult {
  readonly merged: MergedLora;
  /** Eq. 6 with normalised weights at the returned iterate. */
  readonly loss: number;
  readonly iterations: number;
}

/**
 * Runs Algorithm 1 on a stack with per-client normalised weights `w`;
 * `weightedNorm2` is `Σ ŵ_i ‖Θ_i‖²`. Returns the lowest-loss iterate (the
 * paper breaks when the loss rises; we keep the iterate before the rise).
 */
export function alsStack(
  stack: FactorStack,
  w: ArrayLike<number>,
  weightedNorm2: number,
  opts: AlsOptions,
): AlsResult {
  const { dIn, dOut, width: R } = stack;
  const r = Math.min(opts.rank, dIn, dOut);
  const colCoef = columnCoefficients(stack, w);
  const key = streamKey(opts.seed, stack.name, "als-init");
  let a: Float32Array = new Float32Array(r * dIn);
  for (let i = 0; i < a.length; i++) a[i] = opts.sigma * normalAt(key, i);
  let qat = gemm(stack.q, transposeF32(f32(r, dIn, a))); // Q Aᵀ (R × r)
  let aat = gramRows(a, r, dIn);
  let best: MergedLora = { a, b: new Float32Array(dOut * r), rank: r };
  let minLoss = Number.POSITIVE_INFINITY;
  let iterations = 0;
  for (let it = 0; it < opts.iters; it++) {
    iterations++;
    // Eq. 7: B = P · (D · QAᵀ · (AAᵀ)⁺)
    const aatPinv = pinvSym(aat);
    const x = new Float32Array(R * r);
    for (let j = 0; j < R; j++) {
      for (let c = 0; c < r; c++) {
        let s = 0;
        for (let k = 0; k < r; k++) s += qat.data[j * r + k] * aatPinv.data[k * r + c];
        x[j * r + c] = colCoef[j] * s;
      }
    }
    const b = gemm(stack.p, f32(R, r, x));
    // Eq. 8: A = (BᵀB)⁺ · (Bᵀ P D) · Q
    const ptb = gemmTN(stack.p, b, () => stack.pT); // Pᵀ B (R × r)
    const btb = gramCols(b.data, dOut, r);
    const btbPinv = pinvSym(btb);
    const y = new Float32Array(r * R);
    for (let i = 0; i < r; i++) {
      for (let j = 0; j < R; j++) {
        let s = 0;
        for (let k = 0; k < r; k++) s += btbPinv.data[i * r + k] * ptb.data[j * r + k];
        y[i * R + j] = s * colCoef[j];
      }
    }
    a = gemm(f32(r, R, y), stack.q).data;
    qat = gemm(stack.q, transposeF32(f32(r, dIn, a)));
    aat = gramRows(a, r, dIn);
    const loss = alsLoss(btb, aat, ptb, qat, colCoef, weightedNorm2);
    const improved = loss < minLoss;
    const small = Number.isFinite(minLoss) && minLoss - loss <= opts.tol * minLoss;
    if (improved) {
      best = { a, b: b.data, rank: r };
      minLoss = loss;
    }
    if (!improved || small) break;
  }
  return { merged: best, loss: minLoss, iterations };
}

function alsLoss(btb: Mat, aat: Mat, ptb: F32Mat, qat: F32Mat, colCoef: Float64Array, c: number): number {
  const r = btb.rows;
  let ba2 = 0;
  for (let i = 0; i < r * r; i++) ba2 += btb.data[i] * aat.data[i];
  // tr((Bᵀ P D)(Q Aᵀ)) = Σ_j c_j Σ_k (PᵀB)[j][k] (QAᵀ)[j][k]
  let cross = 0;
  const R = colCoef.length;
  for (let j = 0; j < R; j++) {
    let s = 0;
    for (let k = 0; k < r; k++) s += ptb.data[j * r + k] * qat.data[j * r + k];
    cross += colCoef[j] * s;
  }
  return ba2 - 2 * cross + c;
}

/** `X Xᵀ` of a row-major `rows × cols` float32 matrix, in float64. */
export function gramRows(x: Float32Array, rows: number, cols: number): Mat {
  const out = new Float64Array(rows * rows);
  for (let i = 0; i < rows; i++) {
    for (let j = i; j < rows; j++) {
      let s = 0;
      for (let k = 0; k < cols; k++) s += x[i * cols + k] * x[j * cols + k];
      out[i * rows + j] = s;
      out[j * rows + i] = s;
    }
  }
  return { rows, cols: rows, data: out };
}

/** `Xᵀ X` of a row-major `rows × cols` float32 matrix, in float64. */
export function gramCols(x: Float32Array, rows: number, cols: number): Mat {
  const out = new Float64Array(cols * cols);
  for (let k = 0; k < rows; k++) {
    const o = k * cols;
    for (let i = 0; i < cols; i++) {
      const v = x[o + i];
      if (v === 0) continue;
      for (let j = i; j < cols; j++) out[i * cols + j] += v * x[o + j];
    }
  }
  for (let i = 0; i < cols; i++) for (let j = 0; j < i; j++) out[i * cols + j] = out[j * cols + i];
  return { rows: cols, cols, data: out };
}
