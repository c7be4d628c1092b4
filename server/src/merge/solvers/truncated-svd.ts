/**
 * Best rank-`r` approximation (Eckart–Young) of a combination of LoRA terms,
 * `M = P · diag(c) · Q`, never forming `M` unless the cost model says the
 * dense route is cheaper. Three routes, one result:
 *
 * - `core`: orthonormal bases of `range(P)`, `range(Qᵀ)` from the `R × R`
 *   Grams (float64 eigen-decompositions), then an SVD of the small core
 *   `U_pᵀ M U_q`. Exact; `O((dIn + dOut) R² + R³)`. Chosen for small `R`.
 * - `subspace`: subspace iteration with Rayleigh–Ritz on `T = G_p G_q` in
 *   the `G_q` inner product (`MᵀM` seen through `Qᵀ`), `R × R` products on
 *   tfjs, converged to a tolerance on the top-`r` singular values.
 * - `stream`: block Krylov iteration on `MᵀM` (`block-krylov.ts`: each
 *   step's Ritz values come from every block so far, not just the last, so
 *   it needs about the square root of the steps on flat spectra), applied as
 *   products only —
 *   `M Y = P (D (Q Y))`, `Mᵀ X = Qᵀ (D (Pᵀ X))` — never forming `M` or any
 *   `R × R` Gram. `O((dIn + dOut) R l)` per iteration: linear in the number
 *   of clients, where the Gram routes are quadratic (`R²`). Chosen for
 *   large `R` (many clients). It does not know `‖M‖²`: its `norm2` and
 *   `residual` are `null` (the FroM objective `Σ w_i ‖Θ_i‖² − Σ σ_j²` needs
 *   neither).
 * - `dense`: `M = P Q` on the device, then the same block Krylov iteration.
 *   Chosen when `R` nears `min(dIn, dOut)`; elementwise methods start here.
 *
 * Output factors are balanced: `B = U_r Σ_r^{1/2}`, `A = Σ_r^{1/2} V_rᵀ`,
 * padded with zero rows/columns up to the requested rank.
 */
import { columnCoefficients, type FactorStack, weightedP } from "../factor-stack.ts";
import { clientNorm2, combinationNorm2, factorNorm2F32, type StackGrams, stackGrams } from "../grams.ts";
import { type F32Mat, f32, resident, transposeF32 } from "../kernels/device-matmul.ts";
import { denseMatmulNT, type Mat, sliceCols, svd, symEig, transpose } from "../linalg/index.ts";
import { normalAt, streamKey } from "../random.ts";
import { combinationProducts, stackCombination, stackProducts } from "../stack-products.ts";
import type { MergedLora } from "../types.ts";
import { blockKrylov, type KrylovOperator } from "./block-krylov.ts";
import { blockTimes, crossGram, narrow, ritzIterate, widen } from "./ritz-iteration.ts";

/** Route selection; `auto` uses the cost model. */
export type TruncationRoute = "auto" | "core" | "subspace" | "stream" | "dense";

/** Tuning of the rank-`r` solver. */
export interface TruncationOptions {
  readonly route?: TruncationRoute;
  /** Convergence tolerance of the iterative routes (relative to `σ_1²`). */
  readonly tol?: number;
  readonly maxIter?: number;
  /** Seed of the iterative routes' start block. */
  readonly seed?: number;
  /** Largest `R` for which `core` is chosen automatically. */
  readonly coreMaxWidth?: number;
}

/** A rank-`r` approximation and how it was obtained. */
export interface Truncation {
  readonly merged: MergedLora;
  /** Squared singular values kept, descending. */
  readonly sigma2: Float64Array;
  /** `‖M‖²_F` (`null` from the `stream` route, which never needs it). */
  readonly norm2: number | null;
  /** `‖M − BA‖²_F` (`null` when `norm2` is). */
  readonly residual: number | null;
  readonly iterations: number;
  readonly solver: string;
}

const DEFAULTS = { tol: 1e-6, maxIter: 500, seed: 0x5eed, coreMaxWidth: 160 } as const;
/** Eigenvalues of float32-computed Grams below this fraction of the largest are noise. */
const GRAM_RCOND = 1e-9;
/** Iterations the cost model assumes for the `subspace` route (subspace iteration on `R × R`). */
const ASSUMED_ITERATIONS = 30;
/** Iterations it assumes for the product routes' block Krylov iteration (9–13 measured at n = 128). */
const KRYLOV_ITERATIONS = 12;
/**
 * What a flop of the iterations' thin products (`l` columns) costs against
 * one of the large products (Grams, `M = P Q`): measured on BLAS at n = 128,
 * v_proj's stream route ran at about half the rate of its dense `P Q`.
 */
const THIN_PRODUCTS = 2;
/** Blocks the Krylov basis of the product routes holds before it restarts. */
const KRYLOV_BLOCKS = 10;

function blockWidth(rank: number, limit: number): number {
  return Math.max(1, Math.min(limit, rank + 8));
}

/** Chooses a route by estimated flops (see the module comment). */
export function chooseRoute(
  dOut: number,
  dIn: number,
  width: number,
  rank: number,
  opts: TruncationOptions,
): "core" | "subspace" | "stream" | "dense" {
  if (opts.route !== undefined && opts.route !== "auto") return opts.route;
  const coreMax = opts.coreMaxWidth ?? DEFAULTS.coreMaxWidth;
  const l = blockWidth(rank, width);
  const thin = (iterations: number, perIteration: number) => THIN_PRODUCTS * iterations * perIteration;
  const gramCost = 2 * width * width * (dIn + dOut) + thin(ASSUMED_ITERATIONS, 4 * width * width * l);
  const denseCost =
    2 * dOut * width * dIn + thin(KRYLOV_ITERATIONS, 4 * dOut * dIn * blockWidth(rank, Math.min(dIn, dOut)));
  const streamCost = thin(KRYLOV_ITERATIONS, 4 * width * (dIn + dOut) * l);
  const best = Math.min(gramCost, denseCost, streamCost);
  if (best === denseCost) return "dense";
  if (best === streamCost) return "stream";
  return width <= coreMax ? "core" : "subspace";
}

/**
 * Rank-`rank` truncated SVD of `M = Σ_j c_j b_j a_j` (per-client
 * coefficients `coeffs`). Dense meaning: `B A = U_r Σ_r V_rᵀ` of `M`.
 * `clientNorms2`, when the caller has them, are each client's `‖Θ_i‖²`
 * (the product of its terms in the stack), which spares the `stream` route
 * computing its norm bound.
 */
export function truncateStack(
  stack: FactorStack,
  coeffs: ArrayLike<number>,
  rank: number,
  opts: TruncationOptions = {},
  grams?: StackGrams,
  clientNorms2?: readonly number[],
): Truncation {
  const colCoef = columnCoefficients(stack, coeffs);
  const target = Math.min(rank, stack.dOut, stack.dIn);
  const route = chooseRoute(stack.dOut, stack.dIn, stack.width, target, opts);
  if (route === "dense" || stack.width === 0) {
    return truncateDense(stackCombination(stack, colCoef), target, opts);
  }
  if (route === "stream") {
    const bound =
      clientNorms2 === undefined
        ? normBound2(stack, colCoef)
        : clientNorms2.reduce((sum, n2, i) => sum + Math.abs(coeffs[i]) * Math.sqrt(Math.max(0, n2)), 0) ** 2;
    return streamRoute(stack, colCoef, target, opts, bound);
  }
  const g = grams ?? stackGrams(stack);
  return route === "core"
    ? coreRoute(stack, g, colCoef, target)
    : subspaceRoute(stack, g, colCoef, target, opts);
}

/**
 * The exact full-rank result as an adapter: `B = P · diag(c)`, `A = Q`
 * (concatenation, rank `R`). Dense meaning: `B A = Σ_i c_i Θ_i`.
 */
export function concatenate(stack: FactorStack, coeffs: ArrayLike<number>): MergedLora {
  const b = weightedP(stack, columnCoefficients(stack, coeffs)).data;
  return { a: Float32Array.from(stack.q.data), b, rank: stack.width };
}

function coreBasis(g: Mat): { vecs: Mat; inv: Float64Array; sqrt: Float64Array; k: number } {
  const eig = symEig(g);
  const max = eig.values[0] ?? 0;
  let k = 0;
  while (k < eig.values.length && eig.values[k] > max * GRAM_RCOND && eig.values[k] > 0) k++;
  const inv = new Float64Array(k);
  const sqrt = new Float64Array(k);
  for (let j = 0; j < k; j++) {
    sqrt[j] = Math.sqrt(eig.values[j]);
    inv[j] = 1 / sqrt[j];
  }
  return { vecs: eig.vectors, inv, sqrt, k };
}

function weightedGram(gp: Mat, colCoef: Float64Array): Mat {
  const R = gp.rows;
  const out = new Float64Array(R * R);
  for (let a = 0; a < R; a++) {
    for (let b = 0; b < R; b++) out[a * R + b] = colCoef[a] * gp.data[a * R + b] * colCoef[b];
  }
  return { rows: R, cols: R, data: out };
}

/**
 * Orthonormal frame of a stack: `U_p = P E_p Λ_p^{-1/2}` spans `range(P D)`,
 * `U_q = Qᵀ E_q Λ_q^{-1/2}` spans `range(Qᵀ)`, from the `R × R` Grams. Any
 * combination `Σ_j x_j b_j a_j` of the stack's terms equals `U_p C U_qᵀ` for
 * a small core `C`, and SVD/SVT of `C` are those of the dense matrix.
 */
export interface CoreFrame {
  /** `kp` and `kq`: dimensions of the core. */
  readonly kp: number;
  readonly kq: number;
  /** `Xp = U_pᵀ P D = Λ_p^{-1/2} E_pᵀ G_pw` (`kp × R`). */
  readonly xp: Mat;
  /** `Xq = Q U_q = G_q E_q Λ_q^{-1/2}` (`R × kq`). */
  readonly xq: Mat;
  /** Maps a core SVD back to factors: `B = U_p U_k Σ_k^{1/2}`, `A = Σ_k^{1/2} V_kᵀ U_qᵀ`. */
  toFactors(u: Mat, s: Float64Array, v: Mat, k: number, target: number): MergedLora;
}

/** Builds the frame of `stack` under per-column coefficients `colCoef`. */
export function coreFrame(stack: FactorStack, g: StackGrams, colCoef: Float64Array): CoreFrame {
  const R = stack.width;
  const gpw = weightedGram(g.gp, colCoef);
  const bp = coreBasis(gpw);
  const bq = coreBasis(g.gq);
  const gpE = mulCols(gpw, bp.vecs, bp.k); // Gpw Ep (R × kp)
  const gqE = mulCols(g.gq, bq.vecs, bq.k); // Gq Eq (R × kq)
  const xp = new Float64Array(bp.k * R);
  for (let a = 0; a < R; a++)
    for (let i = 0; i < bp.k; i++) xp[i * R + a] = gpE.data[a * bp.k + i] * bp.inv[i];
  const xq = new Float64Array(R * bq.k);
  for (let a = 0; a < R; a++)
    for (let j = 0; j < bq.k; j++) xq[a * bq.k + j] = gqE.data[a * bq.k + j] * bq.inv[j];
  return {
    kp: bp.k,
    kq: bq.k,
    xp: { rows: bp.k, cols: R, data: xp },
    xq: { rows: R, cols: bq.k, data: xq },
    toFactors(u, s, v, k, target) {
      // B = P0 · (D Ep Λp^{-1/2} U_k Σ^{1/2});  A = (Σ^{1/2} V_kᵀ Λq^{-1/2} Eqᵀ) · Q.
      const left = new Float64Array(R * k);
      const right = new Float64Array(k * R);
      for (let j = 0; j < k; j++) {
        const sh = Math.sqrt(s[j]);
        for (let a = 0; a < R; a++) {
          let sl = 0;
          for (let i = 0; i < bp.k; i++)
            sl += bp.vecs.data[a * bp.vecs.cols + i] * bp.inv[i] * u.data[i * u.cols + j];
          left[a * k + j] = colCoef[a] * sl * sh;
          let sr = 0;
          for (let i = 0; i < bq.k; i++)
            sr += v.data[i * v.cols + j] * bq.inv[i] * bq.vecs.data[a * bq.vecs.cols + i];
          right[j * R + a] = sr * sh;
        }
      }
      return mapThroughStack(stack, left, right, k, target);
    },
  };
}

/** The core of the whole combination: `K = Xp Xq` (`kp × kq`). */
export function frameCore(frame: CoreFrame): Mat {
  return denseMatmulNT(frame.xp, transpose(frame.xq));
}

function coreRoute(stack: FactorStack, g: StackGrams, colCoef: Float64Array, target: number): Truncation {
  const frame = coreFrame(stack, g, colCoef);
  const dec = svd(frameCore(frame));
  const all2 = Array.from(dec.s, (s) => s * s);
  const norm2 = all2.reduce((x, y) => x + y, 0);
  const k = Math.min(target, dec.s.length, countPositive(dec.s));
  const residual = Math.max(
    0,
    all2.slice(k).reduce((x, y) => x + y, 0),
  );
  return {
    merged: frame.toFactors(dec.u, dec.s, dec.v, k, target),
    sigma2: Float64Array.from(all2.slice(0, k)),
    norm2,
    residual,
    iterations: 0,
    solver: "core",
  };
}

function countPositive(s: Float64Array): number {
  const cut = (s[0] ?? 0) * 1e-7;
  let k = 0;
  while (k < s.length && s[k] > cut) k++;
  return k;
}

/** First `k` columns of `g · v` (`R × k`). */
/** `G V[:, :k]` for a symmetric `G` (`R × R`), as one float64 product (BLAS where installed). */
function mulCols(g: Mat, v: Mat, k: number): Mat {
  return denseMatmulNT(g, transpose(sliceCols(v, 0, k)));
}

function startBlock(n: number, l: number, seed: number, name: string): F32Mat {
  const key = streamKey(seed, name, "subspace-start");
  const data = new Float32Array(n * l);
  for (let i = 0; i < data.length; i++) data[i] = normalAt(key, i);
  return f32(n, l, data);
}

function subspaceRoute(
  stack: FactorStack,
  g: StackGrams,
  colCoef: Float64Array,
  target: number,
  opts: TruncationOptions,
): Truncation {
  const R = stack.width;
  const gpw = resident(narrow(weightedGram(g.gp, colCoef)));
  const gq = resident(narrow(g.gq));
  const norm2 = combinationNorm2(g, colCoef);
  try {
    const l = blockWidth(target, R);
    const result = ritzIterate(
      (y) => {
        const first = gq.timesWithGram(y, "xtp"); // Gq Y, Yᵀ Gq Y
        const second = gpw.timesWithGram(first.product, "xtp"); // T Gq Y, Yᵀ Gq T Gq Y
        return { wy: first.product, ty: second.product, s: widen(first.gram), h: widen(second.gram) };
      },
      startBlock(R, l, opts.seed ?? DEFAULTS.seed, stack.name),
      {
        rank: target,
        tol: opts.tol ?? DEFAULTS.tol,
        maxIter: opts.maxIter ?? DEFAULTS.maxIter,
        rcond: 1e-10,
        norm2,
      },
    );
    const k = result.values.length;
    const coefK = sliceCols(result.coef, 0, k);
    // B = P0 · (D · Gq Y W_r Σ^{-1/2});  A = (Σ^{1/2} W_rᵀ Yᵀ) · Q.
    const wyW = blockTimes(result.wy, coefK);
    const yW = blockTimes(result.y, coefK);
    const left = new Float64Array(R * k);
    const right = new Float64Array(k * R);
    for (let j = 0; j < k; j++) {
      const s = Math.sqrt(Math.sqrt(result.values[j]));
      for (let a = 0; a < R; a++) {
        left[a * k + j] = (colCoef[a] * wyW.data[a * k + j]) / s;
        right[j * R + a] = yW.data[a * k + j] * s;
      }
    }
    const kept = result.values.reduce((x, y) => x + y, 0);
    return {
      merged: mapThroughStack(stack, left, right, k, target),
      sigma2: result.values,
      norm2,
      residual: Math.max(0, norm2 - kept),
      iterations: result.iterations,
      solver: "subspace",
    };
  } finally {
    gpw.dispose();
    gq.dispose();
  }
}

/** Maps small coefficient matrices back through the stack: `B = P0 · left`, `A = right · Q`. */
function mapThroughStack(
  stack: FactorStack,
  left: Float64Array,
  right: Float64Array,
  k: number,
  target: number,
): MergedLora {
  const R = stack.width;
  if (k === 0) return padRank(new Float32Array(0), new Float32Array(0), stack.dOut, stack.dIn, k, target);
  const ops = stackProducts(stack);
  try {
    const b = ops.timesP(f32(R, k, Float32Array.from(left)));
    const a = ops.fromQ(f32(k, R, Float32Array.from(right)));
    return padRank(b.data, a.data, stack.dOut, stack.dIn, k, target);
  } finally {
    ops.dispose();
  }
}

/** Pads a rank-`k` factor pair with zeros to rank `target` (exact: the product is unchanged). */
export function padRank(
  b: Float32Array,
  a: Float32Array,
  dOut: number,
  dIn: number,
  k: number,
  target: number,
): MergedLora {
  if (k === target) return { b, a, rank: k };
  const bp = new Float32Array(dOut * target);
  for (let i = 0; i < dOut; i++) for (let j = 0; j < k; j++) bp[i * target + j] = b[i * k + j];
  const ap = new Float32Array(target * dIn);
  ap.set(a.subarray(0, k * dIn));
  return { b: bp, a: ap, rank: target };
}

/**
 * Rank-`rank` truncated SVD of a dense `dOut × dIn` matrix by subspace
 * iteration on `MᵀM` (products on tfjs). Dense meaning: `B A = U_r Σ_r V_rᵀ`.
 */
export function truncateDense(
  m: F32Mat,
  rank: number,
  opts: TruncationOptions = {},
  name = "dense",
): Truncation {
  const { rows: dOut, cols: dIn } = m;
  const target = Math.min(rank, dOut, dIn);
  let norm2 = 0;
  for (let i = 0; i < m.data.length; i++) norm2 += m.data[i] * m.data[i];
  if (target === 0 || norm2 === 0) {
    return {
      merged: padRank(new Float32Array(0), new Float32Array(0), dOut, dIn, 0, target),
      sigma2: new Float64Array(0),
      norm2,
      residual: norm2,
      iterations: 0,
      solver: "dense",
    };
  }
  const mm = resident(m);
  const mt = resident(transposeF32(m));
  try {
    const t = iterateProducts(
      {
        dOut,
        dIn,
        timesWithGram: (y) => {
          const first = mm.timesWithGram(y, "ptp"); // M Y, (M Y)ᵀ (M Y)
          return { product: first.product, gram: widen(first.gram) };
        },
        timesT: (x) => mt.times(x),
      },
      target,
      opts,
      name,
      norm2,
    );
    return { ...t, solver: "dense" };
  } finally {
    mm.dispose();
    mt.dispose();
  }
}

/**
 * Block Krylov iteration on `MᵀM` (`block-krylov.ts`) through `op`'s products,
 * then balanced factors `B = M V_r Σ^{-1/2}`, `A = Σ^{1/2} V_rᵀ`; `norm2`
 * is `‖M‖²_F` or a bound on it (it only stops the iteration).
 */
export function iterateProducts(
  op: KrylovOperator,
  target: number,
  opts: TruncationOptions,
  name: string,
  norm2: number | undefined,
): Omit<Truncation, "solver"> {
  const { dOut, dIn } = op;
  const l = blockWidth(target, Math.min(dIn, dOut));
  const result = blockKrylov(op, startBlock(dIn, l, opts.seed ?? DEFAULTS.seed, name), {
    rank: target,
    tol: opts.tol ?? DEFAULTS.tol,
    maxIter: opts.maxIter ?? DEFAULTS.maxIter,
    rcond: 1e-10,
    maxBasis: Math.min(dIn, KRYLOV_BLOCKS * l),
    ...(norm2 !== undefined ? { norm2 } : {}),
  });
  const k = result.values.length;
  const b = new Float32Array(dOut * k);
  const a = new Float32Array(k * dIn);
  for (let j = 0; j < k; j++) {
    const s = Math.sqrt(Math.sqrt(result.values[j]));
    for (let i = 0; i < dOut; i++) b[i * k + j] = result.mv.data[i * k + j] / s;
    for (let c = 0; c < dIn; c++) a[j * dIn + c] = result.v.data[c * k + j] * s;
  }
  const kept = result.values.reduce((x, y) => x + y, 0);
  return {
    merged: padRank(b, a, dOut, dIn, k, target),
    sigma2: result.values,
    norm2: norm2 ?? null,
    residual: norm2 === undefined ? null : Math.max(0, norm2 - kept),
    iterations: result.iterations,
  };
}

/**
 * `(Σ_i ‖c_i Θ_i‖_F)² ≥ ‖M‖²_F` (triangle inequality), each client's norm
 * from its own `r_i × r_i` Grams: `O((dIn + dOut) Σ r_i²)`, linear in the
 * number of clients. A client of one term takes them as float32 device
 * products (`factorNorm2F32`, no copy), one of several terms joins them
 * first (`clientNorm2`, float64); the sum is raised by `BOUND_MARGIN` so
 * float32 rounding cannot take it below `‖M‖²`. It only stops the stream
 * route's iteration. For FroM's normalised weights it is at most the
 * objective's `Σ w_i ‖Θ_i‖²` (Cauchy–Schwarz).
 */
export function normBound2(stack: FactorStack, colCoef: Float64Array): number {
  const { dOut, dIn } = stack;
  // Clients with one term whose columns share a coefficient (every linear method's
  // stack) need no copy: ‖c s B A‖ = |c s| ‖B A‖, from the term's own arrays.
  const termsOf = new Int32Array(stack.clients);
  let at = 0;
  for (const rank of stack.termRanks) {
    if (rank > 0) termsOf[stack.owner[at]]++;
    at += rank;
  }
  const norms = new Float64Array(stack.clients);
  const joined = new Map<number, { rank: number; a: Float32Array; b: Float32Array }[]>();
  stack.eachTerm((t, off) => {
    if (t.rank === 0) return;
    const c = colCoef[off];
    let constant = true;
    for (let j = 1; j < t.rank; j++) if (colCoef[off + j] !== c) constant = false;
    if (termsOf[t.client] === 1 && constant) {
      const n2 = factorNorm2F32(f32(dOut, t.rank, t.b), f32(t.rank, dIn, t.a));
      norms[t.client] = Math.abs(c * (t.scale ?? 1)) * Math.sqrt(Math.max(0, n2));
      return;
    }
    // Copies: a streamed stack's arrays last only until its next read.
    const b = new Float32Array(dOut * t.rank);
    for (let row = 0; row < dOut; row++)
      for (let j = 0; j < t.rank; j++)
        b[row * t.rank + j] = (t.scale ?? 1) * colCoef[off + j] * t.b[row * t.rank + j];
    const own = joined.get(t.client) ?? [];
    own.push({ rank: t.rank, a: t.a.slice(0, t.rank * dIn), b });
    joined.set(t.client, own);
  });
  for (const [client, own] of joined) {
    const merged = own.length === 1 ? own[0] : joinTerms(own, dOut, dIn);
    norms[client] = Math.sqrt(Math.max(0, clientNorm2({ ...merged, scaling: 1 }, dOut, dIn)));
  }
  let sum = 0;
  for (const n of norms) sum += n;
  return sum * sum * (1 + BOUND_MARGIN);
}

/** Relative margin of {@link normBound2} over its float32 terms' rounding. */
const BOUND_MARGIN = 1e-5;

/** One client's terms as one factor pair: `B = [B_1 | B_2 | …]`, `A = [A_1; A_2; …]`. */
function joinTerms(
  terms: readonly { rank: number; a: Float32Array; b: Float32Array }[],
  dOut: number,
  dIn: number,
): { rank: number; a: Float32Array; b: Float32Array } {
  const rank = terms.reduce((s, t) => s + t.rank, 0);
  const a = new Float32Array(rank * dIn);
  const b = new Float32Array(dOut * rank);
  let off = 0;
  for (const t of terms) {
    a.set(t.a, off * dIn);
    for (let row = 0; row < dOut; row++)
      for (let j = 0; j < t.rank; j++) b[row * rank + off + j] = t.b[row * t.rank + j];
    off += t.rank;
  }
  return { rank, a, b };
}

/**
 * The `stream` route: the truncated SVD of `M = P D Q` from the products
 * `M Y = P (D (Q Y))` and `Mᵀ X = Qᵀ (D (Pᵀ X))`, each `O((dIn + dOut) R l)`.
 */
function streamRoute(
  stack: FactorStack,
  colCoef: Float64Array,
  target: number,
  opts: TruncationOptions,
  bound: number,
): Truncation {
  // Only P and Q are used (uploaded, or never built on a strided device): Mᵀ X
  // is computed as ((Xᵀ P) D Q)ᵀ, transposing the thin l-column blocks instead
  // of the stacked factors.
  const ops = combinationProducts(stack, colCoef);
  try {
    const t = iterateProducts(
      {
        dOut: stack.dOut,
        dIn: stack.dIn,
        timesWithGram: (y) => {
          const product = ops.times(y);
          return { product, gram: crossGram(product, product) };
        },
        timesT: (x) => ops.timesT(x),
      },
      target,
      opts,
      stack.name,
      bound,
    );
    // The iteration stopped on a bound of ‖M‖²; the norm itself stays unknown.
    return { ...t, norm2: null, residual: null, solver: "stream" };
  } finally {
    ops.dispose();
  }
}
