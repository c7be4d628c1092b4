/**
 * Block Krylov iteration (block Lanczos with full reorthogonalisation and
 * Rayleigh–Ritz on the whole basis) for the top eigenpairs of `T = MᵀM`,
 * `M` seen only through its products. Each iteration costs what one step of
 * subspace iteration costs — `M Z` and `Mᵀ (M Z)` for one block `Z` — but
 * the Ritz values come from the span of every block so far,
 * `[Ω, TΩ, T²Ω, …]`, which converges in about the square root of the
 * iterations on flat spectra (Musco & Musco, "Randomized block Krylov
 * methods for stronger and faster approximate singular value
 * decomposition", NeurIPS 2015), the usual case for sums of many clients'
 * updates. The basis is float32 and kept transposed, `Vᵀ` (`m × dIn`) and
 * `(M V)ᵀ` (`m × dOut`), so a new block is appended as rows and every
 * projection is one device product. Each block is orthonormalised against
 * the basis twice (classical Gram–Schmidt in float32) and within itself, so
 * `VᵀV = I` to float32 rounding and the Ritz problem is the ordinary
 * `H = (M V)ᵀ (M V)`. When the basis would exceed `maxBasis` columns it
 * restarts from its current Ritz vectors.
 */
import { type F32Mat, f32, gemm, gemmTN, transposeF32 } from "../kernels/device-matmul.ts";
import { type Mat, sliceCols, symEig } from "../linalg/index.ts";
import { countPositive, narrow, type RitzOptions, ritzSettled, widen } from "./ritz-iteration.ts";

/** `M` (`dOut × dIn`) seen only through its products. */
export interface KrylovOperator {
  readonly dOut: number;
  readonly dIn: number;
  /** `M Z` and `(M Z)ᵀ (M Z)`. */
  timesWithGram(z: F32Mat): { product: F32Mat; gram: Mat };
  /** `Mᵀ X`. */
  timesT(x: F32Mat): F32Mat;
}

/** Options: those of the subspace iteration, and the basis' largest width. */
export interface KrylovOptions extends RitzOptions {
  /** Columns the basis may reach before it restarts from its Ritz vectors. */
  readonly maxBasis: number;
}

/** The top Ritz pairs of `MᵀM`. */
export interface KrylovResult {
  /** Eigenvalues `σ_j²`, descending, at most `rank`, all positive. */
  readonly values: Float64Array;
  /** `V_k` (`dIn × k`): the Ritz vectors, orthonormal. */
  readonly v: F32Mat;
  /** `M V_k` (`dOut × k`) `= U_k Σ_k`. */
  readonly mv: F32Mat;
  readonly iterations: number;
}

/** Directions of a block whose norm² fell below this fraction of what it had are dependent on the basis. */
const DEPENDENT = 1e-10;

/** A basis `Vᵀ` and `(M V)ᵀ`, rows appended block by block into fixed storage. */
class Basis {
  m = 0;
  private readonly vt: Float32Array;
  private readonly mvt: Float32Array;
  constructor(
    readonly dIn: number,
    readonly dOut: number,
    capacity: number,
  ) {
    this.vt = new Float32Array(capacity * dIn);
    this.mvt = new Float32Array(capacity * dOut);
  }
  /** `Vᵀ` (`m × dIn`), a view. */
  get v(): F32Mat {
    return f32(this.m, this.dIn, this.vt.subarray(0, this.m * this.dIn));
  }
  /** `(M V)ᵀ` (`m × dOut`), a view. */
  get mv(): F32Mat {
    return f32(this.m, this.dOut, this.mvt.subarray(0, this.m * this.dOut));
  }
  /** Appends the columns of `z` (`dIn × l`) and `mz` (`dOut × l`). */
  push(z: F32Mat, mz: F32Mat): void {
    this.vt.set(transposeF32(z).data, this.m * this.dIn);
    this.mvt.set(transposeF32(mz).data, this.m * this.dOut);
    this.m += z.cols;
  }
  /** Replaces the basis by `V C` (`C`: `m × p`), i.e. `Vᵀ ← Cᵀ Vᵀ`. */
  rotate(c: F32Mat): void {
    const v = gemmTN(c, this.v, () => transposeF32(c));
    const mv = gemmTN(c, this.mv, () => transposeF32(c));
    this.vt.set(v.data);
    this.mvt.set(mv.data);
    this.m = c.cols;
  }
}

/**
 * Runs the iteration from the start block `z0` (`dIn × l`) until the wanted
 * Ritz values settle (the criteria of `ritzIterate`), the basis holds an
 * invariant subspace (the values are then exact), or `maxIter`.
 */
export function blockKrylov(op: KrylovOperator, z0: F32Mat, opts: KrylovOptions): KrylovResult {
  const { dIn, dOut } = op;
  // A basis that may span the whole space never restarts (it cannot outgrow it).
  const restarts = opts.maxBasis < dIn;
  const basis = new Basis(dIn, dOut, restarts ? opts.maxBasis : dIn + z0.cols);
  let h: Mat = { rows: 0, cols: 0, data: new Float64Array(0) };
  let raw = z0;
  /** The last Ritz problem's eigenpairs (all of them) and its wanted values. */
  let last: { eig: { values: Float64Array; vectors: Mat }; wanted: Float64Array } | undefined;
  for (let it = 1; ; it++) {
    const z = orthonormalAgainst(raw, basis);
    if (z === undefined) return ritzVectors(basis, last?.eig.vectors, last?.wanted, it - 1); // invariant: exact
    const { product: mz, gram } = op.timesWithGram(z);
    if (restarts && last !== undefined && basis.m + z.cols > opts.maxBasis) {
      const keep = Math.min(last.eig.vectors.cols, z0.cols);
      basis.rotate(narrow(sliceCols(last.eig.vectors, 0, keep)));
      h = diagonal(last.eig.values, keep);
    }
    h = bordered(h, widen(gemm(basis.mv, mz)), gram);
    basis.push(z, mz);
    const eig = symEig(h);
    const k = Math.min(opts.rank, countPositive(eig.values, opts.rcond));
    const wanted = eig.values.slice(0, k);
    const prev = last?.wanted;
    last = { eig, wanted };
    if (k === 0 || it >= opts.maxIter || (prev !== undefined && ritzSettled(wanted, prev, opts))) {
      return ritzVectors(basis, eig.vectors, wanted, it);
    }
    raw = op.timesT(mz);
  }
}

/** `diag(values[0..k))`: `H` of a basis rotated onto its first `k` Ritz vectors. */
function diagonal(values: Float64Array, k: number): Mat {
  const out = new Float64Array(k * k);
  for (let j = 0; j < k; j++) out[j * k + j] = values[j];
  return { rows: k, cols: k, data: out };
}

/**
 * `raw` with the basis projected out and orthonormalised within itself,
 * twice: once dropping the directions left with less than `DEPENDENT` of
 * their norm² (dependent on the basis), then — the survivors now of unit
 * norm — once more dropping any that lose more than half of it (float32
 * rounding magnified by the first normalisation, not a new direction). The
 * second pass keeps the basis orthonormal to float32 rounding however small
 * the new directions were. `undefined` when none is left.
 */
function orthonormalAgainst(raw: F32Mat, basis: Basis): F32Mat | undefined {
  let before = 0;
  for (let i = 0; i < raw.data.length; i++) before += raw.data[i] * raw.data[i];
  if (!(before > 0)) return undefined;
  const first = projectAndNormalise(raw, basis, DEPENDENT * (before / raw.cols));
  return first === undefined ? undefined : projectAndNormalise(first, basis, 0.5);
}

/** `Z − V Vᵀ Z`, orthonormalised through its Gram's eigenvectors, keeping the directions with norm² above `cut`. */
function projectAndNormalise(raw: F32Mat, basis: Basis, cut: number): F32Mat | undefined {
  let z = raw;
  if (basis.m > 0) {
    const vt = basis.v;
    const vc = gemmTN(vt, gemm(vt, z), () => transposeF32(vt)); // V (Vᵀ Z)
    z = f32(raw.rows, raw.cols);
    for (let i = 0; i < z.data.length; i++) z.data[i] = raw.data[i] - vc.data[i];
  }
  const g = symEig(widen(gemmTN(z, z, () => transposeF32(z))));
  let keep = 0;
  while (keep < g.values.length && g.values[keep] > cut) keep++;
  if (keep === 0) return undefined;
  const c = new Float32Array(z.cols * keep);
  for (let p = 0; p < z.cols; p++) {
    for (let j = 0; j < keep; j++) {
      c[p * keep + j] = g.vectors.data[p * g.vectors.cols + j] / Math.sqrt(g.values[j]);
    }
  }
  return gemm(z, f32(z.cols, keep, c));
}

/** `[[H, X], [Xᵀ, G]]` from `H` (`m × m`), the cross block `X = (M V)ᵀ (M Z)` (`m × l`) and `G = (M Z)ᵀ (M Z)`. */
function bordered(h: Mat, cross: Mat, g: Mat): Mat {
  const m = h.rows;
  const l = g.rows;
  const n = m + l;
  const out = new Float64Array(n * n);
  for (let i = 0; i < m; i++) {
    out.set(h.data.subarray(i * m, (i + 1) * m), i * n);
    for (let j = 0; j < l; j++) {
      const v = cross.data[i * l + j];
      out[i * n + m + j] = v;
      out[(m + j) * n + i] = v;
    }
  }
  for (let i = 0; i < l; i++) out.set(g.data.subarray(i * l, (i + 1) * l), (m + i) * n + m);
  return { rows: n, cols: n, data: out };
}

/** `V_k = V C_k` and `M V_k` for the wanted `values` of the last Ritz problem (eigenvectors `vectors`). */
function ritzVectors(
  basis: Basis,
  vectors: Mat | undefined,
  values: Float64Array | undefined,
  iterations: number,
): KrylovResult {
  if (vectors === undefined || values === undefined || values.length === 0) {
    return { values: new Float64Array(0), v: f32(basis.dIn, 0), mv: f32(basis.dOut, 0), iterations };
  }
  const c = narrow(sliceCols(vectors, 0, values.length));
  return {
    values,
    v: gemmTN(basis.v, c, () => transposeF32(basis.v)),
    mv: gemmTN(basis.mv, c, () => transposeF32(basis.mv)),
    iterations,
  };
}
