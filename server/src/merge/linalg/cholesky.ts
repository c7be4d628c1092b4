/**
 * Cholesky factorisation of a symmetric positive definite matrix and the
 * triangular solves that use it. Right-hand sides are matrices (`n × p`);
 * a vector is an `n × 1` matrix. All solves work on whole rows of the
 * right-hand side, so their inner loops walk contiguous memory.
 */
import { type Mat, mat } from "./mat.ts";
import { assertSquare } from "./numeric.ts";

/**
 * Lower-triangular Cholesky factor, or `null` when the matrix is not
 * (numerically) positive definite. Only the lower triangle of `m` is read.
 * Dense equation: `M = L Lᵀ`, `L[i][j] = 0` for `j > i`, `L[i][i] > 0`.
 */
export function cholesky(m: Mat): Mat | null {
  assertSquare("cholesky", m);
  const n = m.rows;
  const a = m.data;
  const l = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    for (let j = 0; j <= i; j++) {
      const rj = j * n;
      let sum = a[ri + j];
      for (let k = 0; k < j; k++) sum -= l[ri + k] * l[rj + k];
      if (i === j) {
        // `!(sum > 0)` also rejects NaN.
        if (!(sum > 0) || !Number.isFinite(sum)) return null;
        l[ri + i] = Math.sqrt(sum);
      } else {
        l[ri + j] = sum / l[rj + j];
      }
    }
  }
  return { rows: n, cols: n, data: l };
}

function checkSolve(what: string, t: Mat, b: Mat): void {
  assertSquare(what, t);
  if (b.rows !== t.rows)
    throw new RangeError(`${what}: ${t.rows}×${t.cols} system, right-hand side ${b.rows}×${b.cols}`);
}

/**
 * Forward substitution with a lower-triangular `L` (its upper triangle is ignored).
 * Dense equation: `X = L⁻¹ B`, i.e. `L X = B`.
 */
export function solveLowerTriangular(l: Mat, b: Mat): Mat {
  checkSolve("solveLowerTriangular", l, b);
  const n = l.rows;
  const p = b.cols;
  const ld = l.data;
  const x = Float64Array.from(b.data);
  for (let i = 0; i < n; i++) {
    const xi = i * p;
    for (let k = 0; k < i; k++) {
      const c = ld[i * n + k];
      if (c === 0) continue;
      const xk = k * p;
      for (let j = 0; j < p; j++) x[xi + j] -= c * x[xk + j];
    }
    const inv = 1 / ld[i * n + i];
    for (let j = 0; j < p; j++) x[xi + j] *= inv;
  }
  return mat(n, p, x);
}

/**
 * Back substitution with an upper-triangular `U` (its lower triangle is ignored).
 * Dense equation: `X = U⁻¹ B`, i.e. `U X = B`.
 */
export function solveUpperTriangular(u: Mat, b: Mat): Mat {
  checkSolve("solveUpperTriangular", u, b);
  const n = u.rows;
  const p = b.cols;
  const ud = u.data;
  const x = Float64Array.from(b.data);
  for (let i = n - 1; i >= 0; i--) {
    const xi = i * p;
    for (let k = i + 1; k < n; k++) {
      const c = ud[i * n + k];
      if (c === 0) continue;
      const xk = k * p;
      for (let j = 0; j < p; j++) x[xi + j] -= c * x[xk + j];
    }
    const inv = 1 / ud[i * n + i];
    for (let j = 0; j < p; j++) x[xi + j] *= inv;
  }
  return mat(n, p, x);
}

/**
 * Solves a symmetric positive definite system from its Cholesky factor
 * (forward substitution with `L`, then back substitution with `Lᵀ`, never formed).
 * Dense equation: `X = (L Lᵀ)⁻¹ B`.
 */
export function choleskySolve(l: Mat, b: Mat): Mat {
  const y = solveLowerTriangular(l, b);
  const n = l.rows;
  const p = b.cols;
  const ld = l.data;
  const x = y.data;
  for (let i = n - 1; i >= 0; i--) {
    const xi = i * p;
    for (let k = i + 1; k < n; k++) {
      const c = ld[k * n + i];
      if (c === 0) continue;
      const xk = k * p;
      for (let j = 0; j < p; j++) x[xi + j] -= c * x[xk + j];
    }
    const inv = 1 / ld[i * n + i];
    for (let j = 0; j < p; j++) x[xi + j] *= inv;
  }
  return y;
}
