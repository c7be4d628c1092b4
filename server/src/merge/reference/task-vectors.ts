/**
 * Dense float64 building blocks shared by the reference merge methods.
 *
 * The reference implementations materialise every task vector
 * `Θ_i = s_i B_i A_i` as a dense `dOut × dIn` matrix and follow the papers'
 * equations literally. They exist only to test the fast factored engine
 * against, so clarity wins over speed, and nothing here may import the code
 * under test (`server/src/merge/linalg`).
 */
import { Matrix, SingularValueDecomposition } from "ml-matrix";
import type { ClientLora, ModuleGroup } from "../types.ts";

/**
 * The dense task vector of one client, `Θ_i = s_i B_i A_i` (`dOut × dIn`),
 * accumulated in float64 from the float32 factors.
 *
 * @throws if the factor lengths do not match `rank`, `dOut` and `dIn`.
 */
export function denseTaskVector(c: ClientLora, dOut: number, dIn: number): Matrix {
  if (c.a.length !== c.rank * dIn) {
    throw new Error(`A has ${c.a.length} entries, expected rank ${c.rank} × dIn ${dIn}`);
  }
  if (c.b.length !== dOut * c.rank) {
    throw new Error(`B has ${c.b.length} entries, expected dOut ${dOut} × rank ${c.rank}`);
  }
  const theta = Matrix.zeros(dOut, dIn);
  for (let row = 0; row < dOut; row++) {
    for (let col = 0; col < dIn; col++) {
      let acc = 0;
      for (let j = 0; j < c.rank; j++) acc += c.b[row * c.rank + j] * c.a[j * dIn + col];
      theta.set(row, col, c.scaling * acc);
    }
  }
  return theta;
}

/**
 * Every client's dense task vector `Θ_i`, in client order.
 *
 * @throws if the module has no clients.
 */
export function denseTaskVectors(module: ModuleGroup): Matrix[] {
  requireClients(module);
  return module.clients.map((c) => denseTaskVector(c, module.dOut, module.dIn));
}

/** @throws if `module` has no clients (every reference method needs at least one). */
export function requireClients(module: ModuleGroup): void {
  if (module.clients.length === 0) throw new Error(`module ${module.name} has no clients`);
}

/** Squared Frobenius norm `‖M‖²_F = Σ_{p,q} M[p][q]²`. */
export function frob2(m: Matrix): number {
  let acc = 0;
  for (let p = 0; p < m.rows; p++) {
    for (let q = 0; q < m.columns; q++) acc += m.get(p, q) ** 2;
  }
  return acc;
}

/** `Σ_i w_i M_i` as a new matrix (all `M_i` must share one shape). */
export function weightedSum(mats: readonly Matrix[], weights: readonly number[]): Matrix {
  if (mats.length === 0) throw new Error("weightedSum of no matrices");
  if (mats.length !== weights.length) {
    throw new Error(`weightedSum: ${mats.length} matrices but ${weights.length} weights`);
  }
  const out = Matrix.zeros(mats[0].rows, mats[0].columns);
  mats.forEach((m, i) => {
    if (m.rows !== out.rows || m.columns !== out.columns) {
      throw new Error(
        `weightedSum: matrix ${i} is ${m.rows}×${m.columns}, expected ${out.rows}×${out.columns}`,
      );
    }
    for (let p = 0; p < out.rows; p++) {
      for (let q = 0; q < out.columns; q++) out.set(p, q, out.get(p, q) + weights[i] * m.get(p, q));
    }
  });
  return out;
}

/** Row-major float64 copy of a matrix, for comparing against the engine's flat arrays. */
export function flatten(m: Matrix): Float64Array {
  return Float64Array.from(m.to1DArray());
}

/** A thin SVD `M = U diag(s) Vᵀ` with `s` sorted in non-increasing order. */
export interface ThinSvd {
  /** `dOut × p` with `p = min(rows, columns)`, orthonormal columns. */
  readonly u: Matrix;
  /** The `p` singular values, largest first. */
  readonly s: number[];
  /** `dIn × p`, orthonormal columns. */
  readonly v: Matrix;
}

/**
 * Thin SVD `M = U Σ Vᵀ` via ml-matrix (Golub–Kahan), singular values sorted
 * largest first (re-sorted defensively together with their vectors).
 */
export function thinSvd(m: Matrix): ThinSvd {
  const p = Math.min(m.rows, m.columns);
  if (p === 0) return { u: new Matrix(m.rows, 0), s: [], v: new Matrix(m.columns, 0) };
  const svd = new SingularValueDecomposition(m, { autoTranspose: true });
  const u0 = svd.leftSingularVectors;
  const v0 = svd.rightSingularVectors;
  const s0 = svd.diagonal;
  const order = Array.from({ length: p }, (_, i) => i).sort((x, y) => s0[y] - s0[x]);
  const u = new Matrix(m.rows, p);
  const v = new Matrix(m.columns, p);
  order.forEach((src, dst) => {
    for (let row = 0; row < m.rows; row++) u.set(row, dst, u0.get(row, src));
    for (let row = 0; row < m.columns; row++) v.set(row, dst, v0.get(row, src));
  });
  return { u, s: order.map((i) => Math.max(0, s0[i])), v };
}

/** Result of {@link truncatedSvd}: `b · a` is the best rank-`r` approximation of `M`. */
export interface TruncatedSvd {
  /** `B = U_r Σ_r^{1/2}` (`dOut × r`). */
  readonly b: Matrix;
  /** `A = Σ_r^{1/2} V_rᵀ` (`r × dIn`). */
  readonly a: Matrix;
  /** The `r` kept singular values, largest first. */
  readonly s: number[];
  /** Every singular value of `M` (`min(dOut, dIn)` of them), largest first. */
  readonly spectrum: number[];
}

/**
 * Rank-`r` truncated SVD with the balanced split `B = U_r Σ_r^{1/2}`,
 * `A = Σ_r^{1/2} V_rᵀ`, so `BA = U_r Σ_r V_rᵀ`, the Eckart–Young optimum of
 * `min_{rank ≤ r} ‖X − M‖_F` (FroM Eq. 6's global minimiser, MERGE-MATH.md).
 * `r` above `min(dOut, dIn)` is clamped to it; `‖BA − M‖²_F = Σ_{j>r} σ_j²`.
 *
 * @throws if `r` is negative or not an integer.
 */
export function truncatedSvd(m: Matrix, r: number): TruncatedSvd {
  if (!Number.isInteger(r) || r < 0)
    throw new Error(`truncatedSvd: rank must be a non-negative integer, got ${r}`);
  const { u, s, v } = thinSvd(m);
  const rr = Math.min(r, s.length);
  const b = new Matrix(m.rows, rr);
  const a = new Matrix(rr, m.columns);
  for (let j = 0; j < rr; j++) {
    const root = Math.sqrt(s[j]);
    for (let row = 0; row < m.rows; row++) b.set(row, j, u.get(row, j) * root);
    for (let col = 0; col < m.columns; col++) a.set(j, col, root * v.get(col, j));
  }
  return { b, a, s: s.slice(0, rr), spectrum: s };
}
