/**
 * LoRE-Merging's coordinate descent on the `kp × kq` cores (papers/LoRE-Merging.txt,
 * Algorithm 1): `θ₀ = mean_i(C_i − δ_i)`, then `δ_i = SVT(C_i − θ₀; μ)` for
 * every client, until `‖Δθ₀‖² + Σ_i ‖Δδ_i‖² ≤ tol² · Σ_i ‖C_i‖²`.
 *
 * The cost is in the SVTs, and they are taken without full SVDs where that
 * can be certified (`solvers/partial-svt.ts`): each `δ_i` is kept as factors,
 * each `C_i − θ₀` is applied as `L_i R_iᵀ − θ₀`, and a client's SVT starts
 * from its subspace of the previous iteration. A client whose residual has too
 * many singular values near or above `μ` gets the full SVD, as before.
 *
 * **Start.** The paper starts from `δ_i = 0` (so `θ₀` is first the mean).
 * The problem is convex and this descent converges to its minimiser from any
 * start; `θ₀ = 0`, `δ_i = SVT(C_i; μ)` is the other natural one. When the
 * clients share little, that start is far closer (its residuals are the
 * clients' own low-rank cores, where the mean start leaves every residual at
 * full rank for many iterations). But `θ₀` moves by at most `μ` in spectral
 * norm per iteration, so from 0 it would crawl towards an update most clients
 * share. `auto` takes the zero start when its first step is under `μ/2`, the
 * paper's otherwise; tests check both reach the dense Algorithm 1's fixed point.
 */
import { denseMatmulNT, type Mat, svd, transpose } from "../linalg/index.ts";
import { normalAt, streamKey } from "../random.ts";
import {
  type LowRankMinusDense,
  partialSvt,
  type SvtFactors,
  thresholdTriplets,
} from "../solvers/partial-svt.ts";

/** One client's core `C_i = L_i R_iᵀ` (`kp × kq`, rank `r_i`). */
export interface ClientCore {
  readonly l: Mat;
  readonly lt: Mat;
  readonly r: Mat;
  readonly rt: Mat;
  /** `‖C_i‖²_F`. */
  readonly norm2: number;
}

/** Where the descent starts: the paper's `δ_i = 0`, `θ₀ = 0` with `δ_i = SVT(C_i)`, or the lower objective of the two. */
export type LoreStart = "mean" | "zero" | "auto";

/** Options of {@link loreDescent}. */
export interface LoreDescentOptions {
  readonly mu: number;
  readonly tol: number;
  readonly iters: number;
  /** Rank cap per `δ_i` (∞ for none). */
  readonly cap: number;
  readonly start: LoreStart;
  /** `false` takes the full SVD for every SVT (for tests of the certified route). */
  readonly partial: boolean;
  /** Seeds the random start blocks. */
  readonly seed: number;
  readonly name: string;
}

/** A `δ_i` as factors. */
export type LoreDelta = Pick<SvtFactors, "udt" | "vt" | "nuclear">;

/** The descent's fixed point. */
export interface LoreDescent {
  /** `θ₀` (`kp × kq`). */
  readonly theta0: Mat;
  readonly deltas: LoreDelta[];
  /** `Σ_i ½‖θ₀ + δ_i − C_i‖² + μ‖δ_i‖_*`. */
  readonly objective: number;
  readonly iterations: number;
  /** The start taken (`auto` resolved). */
  readonly start: "mean" | "zero";
  /** SVTs taken by the certified subspace route and by full SVDs. */
  readonly svts: { partial: number; full: number };
}

/** Columns added to the wanted rank in a client's block. */
const OVERSAMPLE = 6;

/** Runs the descent over `cores`, whose sum `Σ_i C_i` is `sum`. */
export function loreDescent(cores: readonly ClientCore[], sum: Mat, o: LoreDescentOptions): LoreDescent {
  const n = cores.length;
  const kp = sum.rows;
  const kq = sum.cols;
  const total2 = cores.reduce((s, c) => s + c.norm2, 0);
  const svts = { partial: 0, full: 0 };
  const bases: (Mat | undefined)[] = cores.map(() => undefined);
  const kept = cores.map((c) => c.r.cols);

  const svtOf = (i: number, theta: { t: Mat; tt: Mat } | undefined, xNorm2: number): SvtFactors => {
    const c = cores[i];
    const x: LowRankMinusDense = { ...c, t: theta?.t, tt: theta?.tt, norm2: xNorm2 };
    const block = Math.min(Math.max(c.r.cols, kept[i]) + OVERSAMPLE, kp, kq);
    const got =
      o.partial && 2 * block <= Math.min(kp, kq)
        ? partialSvt(x, {
            mu: o.mu,
            cap: o.cap,
            block,
            start: bases[i],
            key: streamKey(o.seed, o.name, "lore", i),
            eps: 1e-11,
            maxSteps: 40,
          })
        : undefined;
    const out = got ?? fullSvt(x, o.mu, o.cap, block);
    if (got === undefined) svts.full++;
    else svts.partial++;
    bases[i] = out.basis;
    kept[i] = out.udt.rows;
    return out;
  };

  let theta: Mat = { rows: kp, cols: kq, data: new Float64Array(kp * kq) };
  let deltas: SvtFactors[] | LoreDelta[];
  let xNorms2 = cores.map((c) => c.norm2);
  let start: "mean" | "zero" = o.start === "zero" ? "zero" : "mean";
  if (o.start === "mean") deltas = cores.map(() => emptyDelta(kp, kq));
  else {
    const zero = cores.map((c, i) => svtOf(i, undefined, c.norm2));
    // θ₀ moves by at most μ (spectral norm) per iteration: from θ₀ = 0 its
    // first step, mean_i(C_i − SVT(C_i)), is near μ only along a direction
    // most clients share, whose fixed point is far from 0.
    const drift = o.start === "zero" ? 0 : spectralNorm(meanResidual(sum, zero, n), o.seed);
    start = drift < o.mu / 2 ? "zero" : "mean";
    deltas = start === "zero" ? zero : cores.map(() => emptyDelta(kp, kq));
  }

  let iterations = 0;
  for (let it = 0; it < o.iters; it++) {
    iterations++;
    const next = meanResidual(sum, deltas, n);
    const nextT = transpose(next);
    const theta2 = sumSq(next.data);
    xNorms2 = cores.map((c) => c.norm2 - 2 * innerWithCore(c, next) + theta2);
    const nextDeltas = cores.map((_, i) => svtOf(i, { t: next, tt: nextT }, xNorms2[i]));
    let change = diff2(next.data, theta.data);
    for (let i = 0; i < n; i++) change += deltaDiff2(nextDeltas[i], deltas[i]);
    theta = next;
    deltas = nextDeltas;
    if (change <= o.tol * o.tol * total2) break;
  }
  const shrunk = deltas as SvtFactors[];
  return {
    theta0: theta,
    deltas: shrunk,
    objective: objectiveOf(shrunk, xNorms2, o.mu),
    iterations,
    start,
    svts,
  };
}

/** `Σ_i δ_i` (`kp × kq`) as one product of the stacked factors. */
export function sumOfDeltas(deltas: readonly LoreDelta[], kp: number, kq: number): Mat {
  const k = deltas.reduce((s, d) => s + d.udt.rows, 0);
  if (k === 0) return { rows: kp, cols: kq, data: new Float64Array(kp * kq) };
  const ud = new Float64Array(k * kp);
  const v = new Float64Array(k * kq);
  let row = 0;
  for (const d of deltas) {
    ud.set(d.udt.data, row * kp);
    v.set(d.vt.data, row * kq);
    row += d.udt.rows;
  }
  return denseMatmulNT(transpose({ rows: k, cols: kp, data: ud }), transpose({ rows: k, cols: kq, data: v }));
}

/** `‖m‖₂`, estimated by 30 power steps on `mᵀm` (a choice of start, not a result). */
function spectralNorm(m: Mat, seed: number): number {
  const key = streamKey(seed, "lore-start");
  let v = new Float64Array(m.cols).map((_, i) => normalAt(key, i));
  let s = 0;
  for (let step = 0; step < 30; step++) {
    const nv = Math.hypot(...v);
    if (nv === 0) return 0;
    const mv = new Float64Array(m.rows);
    for (let r = 0; r < m.rows; r++) {
      let acc = 0;
      for (let c = 0; c < m.cols; c++) acc += m.data[r * m.cols + c] * v[c];
      mv[r] = acc / nv;
    }
    s = Math.hypot(...mv);
    const next = new Float64Array(m.cols);
    for (let r = 0; r < m.rows; r++)
      for (let c = 0; c < m.cols; c++) next[c] += m.data[r * m.cols + c] * mv[r];
    v = next;
  }
  return s;
}

/** `θ₀ = (Σ_i C_i − Σ_i δ_i) / n`. */
function meanResidual(sum: Mat, deltas: readonly LoreDelta[], n: number): Mat {
  const d = sumOfDeltas(deltas, sum.rows, sum.cols);
  for (let j = 0; j < d.data.length; j++) d.data[j] = (sum.data[j] - d.data[j]) / n;
  return d;
}

/** `⟨C_i, θ⟩ = tr(L_iᵀ θ R_i)`. */
function innerWithCore(c: ClientCore, theta: Mat): number {
  const tr = denseMatmulNT(theta, c.rt); // θ R_i (kp × r)
  let s = 0;
  for (let j = 0; j < tr.data.length; j++) s += tr.data[j] * c.l.data[j];
  return s;
}

/** `Σ_i ½‖C_i − θ₀ − δ_i‖² + μ‖δ_i‖_*`, from `‖C_i − θ₀‖²` and the kept singular values. */
function objectiveOf(deltas: readonly SvtFactors[], xNorms2: readonly number[], mu: number): number {
  let f = 0;
  for (let i = 0; i < deltas.length; i++) {
    f += 0.5 * Math.max(0, xNorms2[i] - deltas[i].shrunk2) + mu * deltas[i].nuclear;
  }
  return f;
}

/** `‖δ_a − δ_b‖²_F`, densely (no cancellation between the two norms). */
function deltaDiff2(a: LoreDelta, b: LoreDelta): number {
  if (a.udt.rows + b.udt.rows === 0) return 0;
  const minusB = { ...b, udt: { ...b.udt, data: b.udt.data.map((v) => -v) } };
  return sumSq(sumOfDeltas([a, minusB], a.udt.cols, a.vt.cols).data);
}

/** `SVT(X; μ)` by the full SVD of the dense `X = L Rᵀ − T`. */
function fullSvt(x: LowRankMinusDense, mu: number, cap: number, block: number): SvtFactors {
  const dense = denseMatmulNT(x.l, x.r);
  if (x.t !== undefined) for (let j = 0; j < dense.data.length; j++) dense.data[j] -= x.t.data[j];
  const dec = svd(dense);
  const vt = transpose(dec.v);
  const out = thresholdTriplets(transpose(dec.u), dec.s, vt, mu, cap);
  // The next call's warm start: the leading right vectors, as many as its block.
  const b = Math.min(Math.max(block, out.udt.rows + OVERSAMPLE), vt.rows);
  return { ...out, basis: { rows: b, cols: vt.cols, data: vt.data.slice(0, b * vt.cols) } };
}

function emptyDelta(kp: number, kq: number): LoreDelta {
  return {
    udt: { rows: 0, cols: kp, data: new Float64Array(0) },
    vt: { rows: 0, cols: kq, data: new Float64Array(0) },
    nuclear: 0,
  };
}

function sumSq(x: Float64Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  return s;
}

function diff2(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    s += d * d;
  }
  return s;
}
