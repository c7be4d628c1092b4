/**
 * LoRE-Merging (papers/LoRE-Merging.txt, Algorithm 1), run exactly on small
 * cores. Every `Θ_i` lies in `span(U_p) ⊗ span(U_q)` (orthonormal bases of
 * the stacked factors), and SVT commutes with that embedding, so coordinate
 * descent on `Σ_i ½‖θ₀ + δ_i − Θ_i‖² + μ‖δ_i‖_*`:
 *   `θ₀ = mean_i(Θ_i − δ_i)`,  `δ_i = SVT(Θ_i − θ₀; μ)`
 * runs on `kp × kq` cores `C_i = U_pᵀ Θ_i U_q` (`kp, kq ≤ R`), and the result
 * `θ₀ + λ Σ δ_i` is mapped back and truncated to the output rank.
 * (The paper writes `μ‖δ_i‖_*²` in Eq. 1; SVT(·; μ) is the exact minimiser
 * for `½‖·‖² + μ‖·‖_*`, which is the objective we report.)
 */
import { columnCoefficients, stackModule } from "../factor-stack.ts";
import { stackGrams } from "../grams.ts";
import { denseMatmulNT, diagScaleCols, type Mat, sliceCols, svd } from "../linalg/index.ts";
import type { MergeOptions } from "../options.ts";
import { coreFrame } from "../solvers/truncated-svd.ts";
import type { ModuleGroup, ModuleMergeResult } from "../types.ts";
import { outputRank } from "./common.ts";

/** Singular value thresholding `U diag((σ − μ)₊) Vᵀ`, keeping at most `cap` values; returns it and its nuclear norm. */
export function svt(x: Mat, mu: number, cap: number): { value: Mat; nuclear: number } {
  const dec = svd(x);
  let k = 0;
  const limit = Math.min(cap, dec.s.length);
  while (k < limit && dec.s[k] - mu > 0) k++;
  const shrunk = new Float64Array(k);
  let nuclear = 0;
  for (let j = 0; j < k; j++) {
    shrunk[j] = dec.s[j] - mu;
    nuclear += shrunk[j];
  }
  if (k === 0)
    return { value: { rows: x.rows, cols: x.cols, data: new Float64Array(x.rows * x.cols) }, nuclear };
  // U_k diag((σ − μ)₊) V_kᵀ as one float64 product.
  const value = denseMatmulNT(diagScaleCols(sliceCols(dec.u, 0, k), shrunk), sliceCols(dec.v, 0, k));
  return { value, nuclear };
}

/** Merges one module with LoRE-Merging (λ = `scale`). */
export function mergeLore(group: ModuleGroup, opts: MergeOptions): ModuleMergeResult {
  const n = group.clients.length;
  const stack = stackModule(group);
  const ones = new Array(n).fill(1);
  const frame = coreFrame(stack, stackGrams(stack), columnCoefficients(stack, ones));
  const { kp, kq } = frame;
  const size = kp * kq;
  // C_i = Xp[:, cols of i] · Xq[rows of i, :]
  const cores = group.clients.map((_, i) => {
    const c = new Float64Array(size);
    for (let a = 0; a < stack.width; a++) {
      if (stack.owner[a] !== i) continue;
      for (let p = 0; p < kp; p++) {
        const x = frame.xp.data[p * stack.width + a];
        if (x === 0) continue;
        for (let q = 0; q < kq; q++) c[p * kq + q] += x * frame.xq.data[a * kq + q];
      }
    }
    return c;
  });
  const cap =
    opts.rankCap === undefined
      ? Number.POSITIVE_INFINITY
      : Math.ceil(opts.rankCap * Math.min(group.dOut, group.dIn));
  const total2 = cores.reduce((s, c) => s + sumSq(c), 0);
  let deltas: Float64Array[] = cores.map(() => new Float64Array(size));
  let nuclear = new Array(n).fill(0);
  let theta0 = new Float64Array(size);
  let iterations = 0;
  for (let it = 0; it < opts.iters; it++) {
    iterations++;
    const nextTheta = new Float64Array(size);
    for (let i = 0; i < n; i++)
      for (let j = 0; j < size; j++) nextTheta[j] += (cores[i][j] - deltas[i][j]) / n;
    let change = diff2(nextTheta, theta0);
    const nextDeltas: Float64Array[] = [];
    nuclear = [];
    for (let i = 0; i < n; i++) {
      const resid = new Float64Array(size);
      for (let j = 0; j < size; j++) resid[j] = cores[i][j] - nextTheta[j];
      const t = svt({ rows: kp, cols: kq, data: resid }, opts.mu, cap);
      change += diff2(t.value.data, deltas[i]);
      nextDeltas.push(t.value.data);
      nuclear.push(t.nuclear);
    }
    theta0 = nextTheta;
    deltas = nextDeltas;
    if (change <= opts.tol * opts.tol * total2) break;
  }
  let objective = 0;
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < size; j++) {
      const e = theta0[j] + deltas[i][j] - cores[i][j];
      s += e * e;
    }
    objective += 0.5 * s + opts.mu * nuclear[i];
  }
  const result = Float64Array.from(theta0);
  for (const d of deltas) for (let j = 0; j < size; j++) result[j] += opts.scale * d[j];
  const dec = svd({ rows: kp, cols: kq, data: result });
  const cut = (dec.s[0] ?? 0) * 1e-7;
  let positive = 0;
  while (positive < dec.s.length && dec.s[positive] > cut) positive++;
  const target = opts.rank === "full" ? positive : outputRank(group, opts);
  const k = Math.min(target, positive);
  let residual = 0;
  for (let j = k; j < dec.s.length; j++) residual += dec.s[j] * dec.s[j];
  return {
    name: group.name,
    merged: frame.toFactors(dec.u, dec.s, dec.v, k, Math.max(target, k)),
    report: { weights: ones.map(() => 1 / n), objective, residual, iterations, solver: "lore-core" },
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
