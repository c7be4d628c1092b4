/**
 * Block subspace iteration with Rayleigh–Ritz for the top eigenpairs of a
 * self-adjoint operator `T` in an inner product `⟨x, y⟩_W = xᵀ W y`, used to
 * get the top singular values of `M` without forming it (`T ~ MᵀM`). The
 * heavy products are the caller's (on tfjs); the `l × l` Ritz problems are
 * solved here in float64.
 */
import type { F32Mat } from "../kernels/device-matmul.ts";
import { f32, gemm, transposeF32 } from "../kernels/device-matmul.ts";
import { fromFloat32, genSymEig, type Mat, toFloat32 } from "../linalg/index.ts";

/** What one step returns for the current block `Y` (`n × l`). */
export interface RitzStep {
  /** `W Y` (`n × l`), kept for building the final factors. */
  readonly wy: F32Mat;
  /** `T Y` (`n × l`): the next block before re-orthogonalisation. */
  readonly ty: F32Mat;
  /** `Yᵀ W Y` (`l × l`). */
  readonly s: Mat;
  /** `Yᵀ W T Y` (`l × l`). */
  readonly h: Mat;
}

/** Options of the iteration. */
export interface RitzOptions {
  /** Number of wanted eigenpairs. */
  readonly rank: number;
  /** Converged when every wanted Ritz value moves by at most `tol · λ_1` between iterations. */
  readonly tol: number;
  readonly maxIter: number;
  /** Relative cut for the `S` eigenvalues treated as zero (rank deficiency). */
  readonly rcond: number;
  /**
   * `‖M‖²_F` when known, or an upper bound of it: then the iteration also
   * stops once the captured energy `Σ_{j≤rank} λ_j` moves by at most `tol`
   * times the remaining `‖M‖² − Σ λ_j` (or the bound's excess over `Σ λ_j`;
   * the objective is then accurate to about `tol` relative, which is what
   * callers report).
   */
  readonly norm2?: number;
}

/** The converged Ritz pairs. */
export interface RitzResult {
  /** Ritz values, descending, at most `rank` of them, all positive. */
  readonly values: Float64Array;
  /** Final block `Y` (`n × l`). */
  readonly y: F32Mat;
  /** `W Y` of the final block. */
  readonly wy: F32Mat;
  /** Ritz coefficients (`l × k`): Ritz vectors are `Y · coef`, `W`-orthonormal. */
  readonly coef: Mat;
  readonly iterations: number;
}

/**
 * Runs the iteration from `y0` until the wanted Ritz values settle.
 * Dense meaning: the top `rank` eigenpairs of `T` restricted to
 * `range(W)`, i.e. `T v = λ v` with `vᵀ W v = 1`.
 */
export function ritzIterate(step: (y: F32Mat) => RitzStep, y0: F32Mat, opts: RitzOptions): RitzResult {
  let y = y0;
  let prev: Float64Array | null = null;
  for (let it = 1; ; it++) {
    const st = step(y);
    const eig = genSymEig(st.h, st.s, opts.rcond);
    const positive = countPositive(eig.values, opts.rcond);
    const k = Math.min(opts.rank, positive);
    const values = eig.values.slice(0, k);
    // Fewer directions than the block: after at least one application of T
    // the block spans all of range(T), so the Ritz pairs are exact.
    const rankDeficient = it > 1 && (eig.vectors.cols < y.cols || positive < eig.vectors.cols);
    const done = prev !== null && k > 0 && ritzSettled(values, prev, opts);
    if (k === 0 || done || rankDeficient || it >= opts.maxIter) {
      return { values, y, wy: st.wy, coef: eig.vectors, iterations: it };
    }
    prev = values;
    y = nextBlock(st.ty, eig.vectors, eig.values, positive);
  }
}

/**
 * The stopping rule of the iterations on Ritz values: every wanted value
 * (`values`, descending, non-empty) moved by at most `tol · λ_1` since
 * `prev`, or — with `norm2` — the captured energy `Σ λ_j` moved by at most
 * `tol` times what is left of `norm2`.
 */
export function ritzSettled(values: Float64Array, prev: Float64Array, opts: RitzOptions): boolean {
  const scale = values[0];
  let all = true;
  for (let j = 0; j < values.length; j++) {
    if (Math.abs(values[j] - (prev[j] ?? 0)) > opts.tol * scale) all = false;
  }
  if (all || opts.norm2 === undefined) return all;
  const energy = sum(values);
  return Math.abs(energy - sum(prev)) <= opts.tol * Math.max(0, opts.norm2 - energy);
}

function sum(v: Float64Array): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i];
  return s;
}

/** How many of `values` (descending) are positive and above `rcond` times the first. */
export function countPositive(values: Float64Array, rcond: number): number {
  const cut = (values[0] ?? 0) * rcond;
  let k = 0;
  while (k < values.length && values[k] > cut && values[k] > 0) k++;
  return k;
}

/** `Y' = (T Y) · W_k · diag(1/λ_k)`: the Ritz vectors advanced one step, kept at unit scale. */
function nextBlock(ty: F32Mat, coef: Mat, values: Float64Array, k: number): F32Mat {
  const l = coef.rows;
  const c = new Float32Array(l * k);
  for (let p = 0; p < l; p++)
    for (let j = 0; j < k; j++) c[p * k + j] = coef.data[p * coef.cols + j] / values[j];
  return gemm(ty, f32(l, k, c));
}

/** `Xᵀ Y` for two `n × l` float32 blocks (product on tfjs, result widened to float64). */
export function crossGram(x: F32Mat, y: F32Mat): Mat {
  return widen(gemm(transposeF32(x), y));
}

/** A float32 block as float64 (the small problems the solvers take on the CPU). */
export function widen(m: F32Mat): Mat {
  return fromFloat32(m.rows, m.cols, m.data);
}

/** A float64 matrix as a float32 block (for the device's products). */
export function narrow(m: Mat): F32Mat {
  return f32(m.rows, m.cols, toFloat32(m));
}

/** `X · C` for a float32 block `X` (`n × l`) and a float64 `C` (`l × k`), as float64. */
export function blockTimes(x: F32Mat, c: Mat): Mat {
  const n = x.rows;
  const l = x.cols;
  const k = c.cols;
  const out = new Float64Array(n * k);
  for (let i = 0; i < n; i++) {
    for (let p = 0; p < l; p++) {
      const v = x.data[i * l + p];
      if (v === 0) continue;
      const co = p * k;
      const oo = i * k;
      for (let j = 0; j < k; j++) out[oo + j] += v * c.data[co + j];
    }
  }
  return { rows: n, cols: k, data: out };
}
