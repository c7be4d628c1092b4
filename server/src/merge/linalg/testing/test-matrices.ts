/**
 * Deterministic test matrices and numeric checks for the linalg tests
 * (not exported from the package index).
 */
import assert from "node:assert/strict";
import { identity, type Mat, matmul, matmulTN, sub } from "../mat.ts";

/**
 * A seeded uniform generator (mulberry32).
 * Dense equation: `x_t ∈ [0, 1)`, a fixed function of `(seed, t)`.
 */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A seeded `rows × cols` matrix of standard normals (Box–Muller).
 * Dense equation: `M[i][j] ~ N(0, 1)` i.i.d.
 */
export function randomMat(rows: number, cols: number, seed: number): Mat {
  const next = prng(seed);
  const data = new Float64Array(rows * cols);
  for (let i = 0; i < data.length; i++) {
    data[i] = Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
  }
  return { rows, cols, data };
}

/**
 * A seeded random symmetric matrix.
 * Dense equation: `S = (G + Gᵀ) / 2`, `G` standard normal.
 */
export function randomSym(n: number, seed: number): Mat {
  const g = randomMat(n, n, seed);
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) out[i * n + j] = 0.5 * (g.data[i * n + j] + g.data[j * n + i]);
  }
  return { rows: n, cols: n, data: out };
}

/**
 * A seeded random `rows × cols` matrix of rank (at most) `rank`.
 * Dense equation: `M = A B`, `A` (`rows × rank`) and `B` (`rank × cols`) standard normal.
 */
export function randomLowRank(rows: number, cols: number, rank: number, seed: number): Mat {
  return matmul(randomMat(rows, rank, seed), randomMat(rank, cols, seed + 7919));
}

/**
 * A seeded random symmetric PSD matrix of rank `rank`.
 * Dense equation: `S = G Gᵀ`, `G` (`n × rank`) standard normal.
 */
export function randomPsd(n: number, rank: number, seed: number): Mat {
  const g = randomMat(n, rank, seed);
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let k = 0; k < rank; k++) s += g.data[i * rank + k] * g.data[j * rank + k];
      out[i * n + j] = s;
    }
  }
  return { rows: n, cols: n, data: out };
}

/**
 * The Frobenius norm.
 * Dense equation: `‖M‖_F = √(Σ M[i][j]²)`.
 */
export function frob(m: Mat): number {
  let s = 0;
  for (const x of m.data) s += x * x;
  return Math.sqrt(s);
}

/**
 * Asserts `‖A − E‖_F ≤ tol · max(‖E‖_F, 1)` with a message naming `what`.
 * Dense equation: `‖A − E‖_F / max(‖E‖_F, 1) ≤ tol`.
 */
export function assertMatClose(actual: Mat, expected: Mat, tol: number, what: string): void {
  assert.equal(actual.rows, expected.rows, `${what}: row count`);
  assert.equal(actual.cols, expected.cols, `${what}: column count`);
  const err = frob(sub(actual, expected)) / Math.max(frob(expected), 1);
  assert.ok(err <= tol, `${what}: relative error ${err} > ${tol}`);
}

/**
 * Asserts that the columns of `q` are orthonormal.
 * Dense equation: `‖QᵀQ − I‖_F ≤ tol`.
 */
export function assertOrthonormalCols(q: Mat, tol: number, what: string): void {
  const err = frob(sub(matmulTN(q, q), identity(q.cols)));
  assert.ok(err <= tol, `${what}: ‖QᵀQ − I‖_F = ${err} > ${tol}`);
}

/**
 * Asserts that the values are non-increasing.
 * Dense equation: `v[0] ≥ v[1] ≥ … ≥ v[k−1]`.
 */
export function assertDescending(v: Float64Array, what: string): void {
  for (let i = 1; i < v.length; i++) {
    assert.ok(v[i] <= v[i - 1], `${what}: value ${i} (${v[i]}) exceeds value ${i - 1} (${v[i - 1]})`);
  }
}

/**
 * A copy of `m` with column `src` written over column `dst` (a rank-deficient input).
 * Dense equation: `C[i][dst] = M[i][src]`, other columns unchanged.
 */
export function duplicateColumn(m: Mat, src: number, dst: number): Mat {
  const data = Float64Array.from(m.data);
  for (let i = 0; i < m.rows; i++) data[i * m.cols + dst] = data[i * m.cols + src];
  return { rows: m.rows, cols: m.cols, data };
}
