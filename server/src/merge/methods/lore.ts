/**
 * LoRE-Merging (papers/LoRE-Merging.txt, Algorithm 1), run exactly on small
 * cores. Every `Θ_i` lies in `span(U_p) ⊗ span(U_q)` (orthonormal bases of
 * the stacked factors), and SVT commutes with that embedding, so coordinate
 * descent on `Σ_i ½‖θ₀ + δ_i − Θ_i‖² + μ‖δ_i‖_*`:
 *   `θ₀ = mean_i(Θ_i − δ_i)`,  `δ_i = SVT(Θ_i − θ₀; μ)`
 * runs on `kp × kq` cores `C_i = U_pᵀ Θ_i U_q` (`kp, kq ≤ R`)
 * (`lore-descent.ts`), and the result `θ₀ + λ Σ δ_i` is mapped back and
 * truncated to the output rank.
 * (The paper writes `μ‖δ_i‖_*²` in Eq. 1; SVT(·; μ) is the exact minimiser
 * for `½‖·‖² + μ‖·‖_*`, which is the objective we report.)
 */
import { columnCoefficients, type FactorStack, stackModule } from "../factor-stack.ts";
import { stackGrams } from "../grams.ts";
import { denseMatmulNT, type Mat, svd, transpose } from "../linalg/index.ts";
import type { MergeMethod } from "../method.ts";
import type { MergeOptions } from "../params.ts";
import { type CoreFrame, coreFrame } from "../solvers/truncated-svd.ts";
import type { ModuleGroup, ModuleMergeResult } from "../types.ts";
import { outputRank } from "./common.ts";
import { type ClientCore, type LoreStart, loreDescent, sumOfDeltas } from "./lore-descent.ts";

/** How {@link mergeLore} runs its descent (tests pin these; merges use the defaults). */
export interface LoreRun {
  readonly start: LoreStart;
  readonly partial: boolean;
}

/** Merges one module with LoRE-Merging (λ = `scale`). */
export function mergeLore(group: ModuleGroup, opts: MergeOptions): ModuleMergeResult {
  return loreModule(group, opts, { start: "auto", partial: true }).result;
}

/** {@link mergeLore} with its descent pinned, and how many SVTs each route took. */
export function loreModule(
  group: ModuleGroup,
  opts: MergeOptions,
  run: LoreRun,
): { result: ModuleMergeResult; svts: { partial: number; full: number } } {
  const n = group.clients.length;
  const stack = stackModule(group);
  const ones = new Array(n).fill(1);
  const frame = coreFrame(stack, stackGrams(stack), columnCoefficients(stack, ones));
  const { kp, kq } = frame;
  const cap =
    opts.rankCap === undefined
      ? Number.POSITIVE_INFINITY
      : Math.ceil(opts.rankCap * Math.min(group.dOut, group.dIn));
  const sum = denseMatmulNT(frame.xp, transpose(frame.xq)); // Σ_i C_i = Xp Xq
  const d = loreDescent(clientCores(stack, frame), sum, {
    mu: opts.mu,
    tol: opts.tol,
    iters: opts.iters,
    cap,
    start: run.start,
    partial: run.partial,
    seed: opts.seed,
    name: group.name,
  });
  const merged = sumOfDeltas(d.deltas, kp, kq);
  for (let j = 0; j < merged.data.length; j++) {
    merged.data[j] = d.theta0.data[j] + opts.scale * merged.data[j];
  }
  const dec = svd(merged);
  const cut = (dec.s[0] ?? 0) * 1e-7;
  let positive = 0;
  while (positive < dec.s.length && dec.s[positive] > cut) positive++;
  const target = opts.rank === "full" ? positive : outputRank(group, opts);
  const k = Math.min(target, positive);
  let residual = 0;
  for (let j = k; j < dec.s.length; j++) residual += dec.s[j] * dec.s[j];
  const result: ModuleMergeResult = {
    name: group.name,
    merged: frame.toFactors(dec.u, dec.s, dec.v, k, Math.max(target, k)),
    report: {
      weights: ones.map(() => 1 / n),
      objective: d.objective,
      residual,
      iterations: d.iterations,
      solver: d.start === "zero" ? "lore-core-zero-start" : "lore-core",
    },
  };
  return { result, svts: d.svts };
}

/** Each client's core `C_i = Xp[:, cols_i] · Xq[cols_i, :]` as its two factors. */
function clientCores(stack: FactorStack, frame: CoreFrame): ClientCore[] {
  const { kp, kq, xp, xq } = frame;
  const width = stack.width;
  const cols: number[][] = Array.from({ length: stack.clients }, () => []);
  for (let a = 0; a < width; a++) cols[stack.owner[a]].push(a);
  return cols.map((own) => {
    const r = own.length;
    const l = new Float64Array(kp * r);
    const rt = new Float64Array(r * kq);
    own.forEach((a, c) => {
      for (let p = 0; p < kp; p++) l[p * r + c] = xp.data[p * width + a];
      rt.set(xq.data.subarray(a * kq, (a + 1) * kq), c * kq);
    });
    const lm: Mat = { rows: kp, cols: r, data: l };
    const rtm: Mat = { rows: r, cols: kq, data: rt };
    const lt = transpose(lm);
    const rm = transpose(rtm);
    // ‖L Rᵀ‖² = tr((LᵀL)(RᵀR)).
    const gl = denseMatmulNT(lt, lt);
    const gr = denseMatmulNT(rtm, rtm);
    let norm2 = 0;
    for (let j = 0; j < gl.data.length; j++) norm2 += gl.data[j] * gr.data[j];
    return { l: lm, lt, r: rm, rt: rtm, norm2 };
  });
}

/** LoRE, as the registry lists it. */
export const loreMethod: MergeMethod = {
  name: "lore",
  title: "LoRE",
  summary: "a shared low-rank base plus per-client residuals thresholded by SVT (μ)",
  params: ["mu", "iters", "rankCap"],
  defaults: { iters: 50 },
  denseWeights: "uniform",
  usesSamples: false,
  merge: mergeLore,
  reference: "lore-dense",
};
