/**
 * Thin Householder QR factorisation. The matrix is worked on TRANSPOSED
 * (column `j` of `M` is a contiguous row), so applying a reflector to a
 * column is a contiguous dot product and axpy.
 */
import type { Mat } from "./mat.ts";
import { assertFinite, norm2 } from "./numeric.ts";

/** A thin QR factorisation `M = Q R`. */
export interface Qr {
  /** `m × k` with orthonormal columns, `k = min(m, n)`. */
  readonly q: Mat;
  /** `k × n` upper triangular (trapezoidal when wide) with a non-negative diagonal. */
  readonly r: Mat;
}

/**
 * Thin Householder QR of an `m × n` matrix (meant for tall `m ≥ n`; a wide
 * one gives `Q` `m × m` and a trapezoidal `R`). Rank-deficient input still
 * gives an orthonormal `Q` (a zero diagonal entry of `R` marks a dependent column).
 * Dense equation: `M = Q R`, `QᵀQ = I_k`, `R[i][j] = 0` for `i > j`, `R[i][i] ≥ 0`.
 */
export function qr(m: Mat): Qr {
  assertFinite("qr", m);
  const rows = m.rows;
  const cols = m.cols;
  const k = Math.min(rows, cols);
  // at = Mᵀ: row j is column j of M; its tail becomes the j-th Householder vector.
  const at = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    const ri = i * cols;
    for (let j = 0; j < cols; j++) at[j * rows + i] = m.data[ri + j];
  }
  const rdiag = new Float64Array(k);
  for (let j = 0; j < k; j++) {
    const cj = j * rows;
    let nrm = norm2(at, cj + j, cj + rows);
    if (nrm !== 0) {
      if (at[cj + j] < 0) nrm = -nrm;
      for (let i = j; i < rows; i++) at[cj + i] /= nrm;
      at[cj + j] += 1;
      const v0 = at[cj + j];
      for (let c = j + 1; c < cols; c++) {
        const cc = c * rows;
        let t = 0;
        for (let i = j; i < rows; i++) t += at[cj + i] * at[cc + i];
        t = -t / v0;
        for (let i = j; i < rows; i++) at[cc + i] += t * at[cj + i];
      }
    }
    rdiag[j] = -nrm;
  }

  // R, with its rows signed so that the diagonal is non-negative.
  const r = new Float64Array(k * cols);
  for (let j = 0; j < k; j++) {
    const sign = rdiag[j] < 0 ? -1 : 1;
    r[j * cols + j] = sign * rdiag[j];
    for (let c = j + 1; c < cols; c++) r[j * cols + c] = sign * at[c * rows + j];
  }

  // Qᵀ (k × rows) by back-accumulating the reflectors onto the first k unit vectors.
  const qt = new Float64Array(k * rows);
  for (let h = k - 1; h >= 0; h--) {
    const ch = h * rows;
    qt[h * rows + h] = 1;
    const v0 = at[ch + h];
    if (v0 === 0) continue;
    for (let j = h; j < k; j++) {
      const qj = j * rows;
      let t = 0;
      for (let i = h; i < rows; i++) t += at[ch + i] * qt[qj + i];
      t = -t / v0;
      for (let i = h; i < rows; i++) qt[qj + i] += t * at[ch + i];
    }
  }
  const q = new Float64Array(rows * k);
  for (let j = 0; j < k; j++) {
    const sign = rdiag[j] < 0 ? -1 : 1;
    const qj = j * rows;
    for (let i = 0; i < rows; i++) q[i * k + j] = sign * qt[qj + i];
  }
  return { q: { rows, cols: k, data: q }, r: { rows: k, cols, data: r } };
}
