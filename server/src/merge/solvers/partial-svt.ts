/**
 * Singular value thresholding of `X = L Rᵀ − T` without a full SVD, for
 * LoRE's coordinate descent: `L Rᵀ` is one client's rank-`r` core, `T` the
 * shared dense `θ₀`. Block subspace iteration with Rayleigh–Ritz on products
 * only (`X V`, `Xᵀ U`, `O(kp · kq · b)` each), warm-started from the
 * client's previous subspace.
 *
 * Every answer is certified, or refused (`undefined`, and the caller takes
 * the full SVD):
 * - **Nothing above `μ` is missed.** For the orthonormal basis `U` of the
 *   block, `U (UᵀX)` has rank `b`, so by Eckart–Young
 *   `σ_{b+1}(X) ≤ ‖X − U UᵀX‖_F = √(‖X‖²_F − ‖UᵀX‖²_F)`. Once that is below
 *   `μ`, every singular value above `μ` is among the block's `b`.
 * - **What is kept is converged.** `Xᵀ ũ_j = σ_j ṽ_j` holds exactly for the
 *   Ritz triplets, and each kept one (and each that its residual could lift
 *   above `μ`) has `‖X ṽ_j − σ_j ũ_j‖ ≤ eps · max(σ_1, μ)`.
 */
import { denseMatmulNT, type Mat, svd, transpose } from "../linalg/index.ts";
import { normalAt } from "../random.ts";

/** `X = L Rᵀ − T`, as its factors and the shared dense part. */
export interface LowRankMinusDense {
  /** `L` (`kp × r`) and `Lᵀ`. */
  readonly l: Mat;
  readonly lt: Mat;
  /** `R` (`kq × r`) and `Rᵀ`. */
  readonly r: Mat;
  readonly rt: Mat;
  /** `T` (`kp × kq`) and `Tᵀ`; `undefined` for `T = 0`. */
  readonly t: Mat | undefined;
  readonly tt: Mat | undefined;
  /** `‖X‖²_F`. */
  readonly norm2: number;
}

/** A thresholded result `SVT(X; μ) = Σ_j (σ_j − μ) u_j v_jᵀ`, held as rows. */
export interface SvtFactors {
  /** Rows `(σ_j − μ) u_jᵀ` (`k × kp`). */
  readonly udt: Mat;
  /** Rows `v_jᵀ` (`k × kq`). */
  readonly vt: Mat;
  /** `Σ_j (σ_j − μ)`, the nuclear norm of the result. */
  readonly nuclear: number;
  /** `Σ_j (σ_j² − μ²)` over the kept values: `‖X − SVT(X)‖² = ‖X‖² − shrunk2`. */
  readonly shrunk2: number;
  /** Right singular vectors of `X` as rows (`b × kq`), the next call's warm start. */
  readonly basis: Mat;
}

/** Options of {@link partialSvt}. */
export interface PartialSvtOptions {
  readonly mu: number;
  /** Keep at most this many singular values. */
  readonly cap: number;
  /** Block size `b`. */
  readonly block: number;
  /** Start rows (`· × kq`), e.g. the previous call's `basis`; filled up with random rows. */
  readonly start: Mat | undefined;
  /** Stream key of the random start rows. */
  readonly key: number;
  /** Relative residual of a converged triplet. */
  readonly eps: number;
  /** Most steps before giving up (each is two products with `X`). */
  readonly maxSteps: number;
}

/** `(X V)ᵀ` for `V` given by its rows `vt` (`b × kq`): rows `b × kp`. */
export function timesRows(x: LowRankMinusDense, vt: Mat): Mat {
  const low = denseMatmulNT(denseMatmulNT(vt, x.rt), x.l);
  return x.t === undefined ? low : subInPlace(low, denseMatmulNT(vt, x.t));
}

/** `(Xᵀ U)ᵀ = Uᵀ X` for `U` given by its rows `ut` (`b × kp`): rows `b × kq`. */
export function transposeTimesRows(x: LowRankMinusDense, ut: Mat): Mat {
  const low = denseMatmulNT(denseMatmulNT(ut, x.lt), x.r);
  return x.tt === undefined ? low : subInPlace(low, denseMatmulNT(ut, x.tt));
}

/** Certified `SVT(X; μ)` by subspace iteration, or `undefined` when it cannot be certified (see the module comment). */
export function partialSvt(x: LowRankMinusDense, o: PartialSvtOptions): SvtFactors | undefined {
  const kp = x.l.rows;
  const kq = x.r.rows;
  const b = Math.min(o.block, kp, kq);
  if (!(o.mu > 0) || b < 1) return undefined;
  // Rounding in ‖X‖² − ‖UᵀX‖² is a few ulps of ‖X‖².
  const slack = 64 * Number.EPSILON * x.norm2;
  let vt = orthonormalRows(startRows(o.start, b, kq, o.key));
  let ritz: { left: Mat; s: Float64Array } | undefined;
  for (let step = 0; step <= o.maxSteps; step++) {
    const yt = timesRows(x, vt);
    if (ritz !== undefined && converged(yt, ritz.left, ritz.s, o)) {
      return thresholdTriplets(ritz.left, ritz.s, vt, o.mu, o.cap);
    }
    if (step === o.maxSteps) break;
    const ut = orthonormalRows(yt);
    const zt = transposeTimesRows(x, ut);
    // Past the first steps, a block that leaves more than μ² outside cannot be certified.
    if (x.norm2 - sumSq(zt.data) + slack >= o.mu * o.mu && step >= 2) return undefined;
    const dec = svd(zt); // Uᵀ X = W Σ Ṽᵀ, so X ≈ (U W) Σ Ṽᵀ
    ritz = { left: denseMatmulNT(transpose(dec.u), transpose(ut)), s: dec.s };
    vt = transpose(dec.v);
    if (x.norm2 - sumSq(zt.data) + slack >= o.mu * o.mu) ritz = undefined;
  }
  return undefined;
}

/** Whether every triplet that is, or could be, above `μ` has a small residual `‖X ṽ_j − σ_j ũ_j‖`. */
function converged(yt: Mat, left: Mat, s: Float64Array, o: PartialSvtOptions): boolean {
  const n = yt.cols;
  const limit = o.eps * Math.max(s[0] ?? 0, o.mu);
  for (let j = 0; j < s.length; j++) {
    let r2 = 0;
    for (let c = 0; c < n; c++) {
      const d = yt.data[j * n + c] - s[j] * left.data[j * n + c];
      r2 += d * d;
    }
    const res = Math.sqrt(r2);
    if (s[j] + res <= o.mu || j >= o.cap) continue;
    if (res > limit) return false;
  }
  return true;
}

/**
 * `SVT(·; μ)` of singular triplets given as rows (`left` `· × kp`, values `s`
 * descending, `vt` `· × kq`), keeping at most `cap`; `basis` is all of `vt`.
 */
export function thresholdTriplets(left: Mat, s: Float64Array, vt: Mat, mu: number, cap: number): SvtFactors {
  let k = 0;
  while (k < Math.min(cap, s.length) && s[k] > mu) k++;
  const kp = left.cols;
  const kq = vt.cols;
  const udt = new Float64Array(k * kp);
  let nuclear = 0;
  let shrunk2 = 0;
  for (let j = 0; j < k; j++) {
    const g = s[j] - mu;
    nuclear += g;
    shrunk2 += s[j] * s[j] - mu * mu;
    for (let c = 0; c < kp; c++) udt[j * kp + c] = g * left.data[j * kp + c];
  }
  return {
    udt: { rows: k, cols: kp, data: udt },
    vt: { rows: k, cols: kq, data: vt.data.slice(0, k * kq) },
    nuclear,
    shrunk2,
    basis: vt,
  };
}

/** `b` rows: the first rows of `start`, then random normal rows. */
function startRows(start: Mat | undefined, b: number, cols: number, key: number): Mat {
  const out = new Float64Array(b * cols);
  const kept = start === undefined ? 0 : Math.min(start.rows, b);
  if (start !== undefined) out.set(start.data.subarray(0, kept * cols));
  for (let i = kept * cols; i < out.length; i++) out[i] = normalAt(key, i);
  return { rows: b, cols, data: out };
}

/** An orthonormal basis (as rows) of the row space of `m`, completed to `m.rows` rows when `m` is rank-deficient. */
export function orthonormalRows(m: Mat): Mat {
  return transpose(svd(m).v);
}

function subInPlace(a: Mat, b: Mat): Mat {
  for (let i = 0; i < a.data.length; i++) a.data[i] -= b.data[i];
  return a;
}

function sumSq(x: Float64Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  return s;
}
