import { Matrix } from "ml-matrix";
import type { ModuleGroup } from "../types.ts";
import { denseTaskVectors, frob2, thinSvd, weightedSum } from "./task-vectors.ts";

/**
 * Singular value thresholding (papers/LoRE-Merging.txt §3.2, after Cai et al.
 * 2010): `SVT(M; μ) = U diag((σ − μ)₊) Vᵀ`. With `maxRank`, additionally keep
 * only the largest `maxRank` thresholded singular values.
 */
export function svt(m: Matrix, mu: number, maxRank?: number): Matrix {
  const { u, s, v } = thinSvd(m);
  const keep = Math.min(s.length, maxRank ?? s.length);
  const out = Matrix.zeros(m.rows, m.columns);
  for (let j = 0; j < keep; j++) {
    const shrunk = Math.max(0, s[j] - mu);
    if (shrunk === 0) continue;
    for (let p = 0; p < m.rows; p++) {
      for (let q = 0; q < m.columns; q++) out.set(p, q, out.get(p, q) + u.get(p, j) * shrunk * v.get(q, j));
    }
  }
  return out;
}

/** Nuclear norm `‖M‖_* = Σ σ_j(M)`. */
export function nuclearNorm(m: Matrix): number {
  return thinSvd(m).s.reduce((acc, x) => acc + x, 0);
}

/**
 * The objective whose exact coordinate minimisers are LoRE's updates (the mean
 * for `θ₀`, `SVT(·; μ)` for `δ_i`): `f = Σ_i (½‖θ₀ + δ_i − Θ_i‖²_F + μ‖δ_i‖_*)`.
 * (LoRE-Merging Eq. 1 writes `‖·‖²_F + μ‖δ_i‖²_*`, whose `δ` minimiser is not
 * `SVT(·; μ)`; we report the objective the algorithm actually descends.)
 */
export function loreObjective(
  theta0: Matrix,
  deltas: readonly Matrix[],
  thetas: readonly Matrix[],
  mu: number,
): number {
  let acc = 0;
  thetas.forEach((theta, i) => {
    acc += 0.5 * frob2(weightedSum([theta0, deltas[i], theta], [1, 1, -1])) + mu * nuclearNorm(deltas[i]);
  });
  return acc;
}

/** Options of {@link loreDense}. */
export interface LoreDenseOptions {
  /** Nuclear-norm weight `μ ≥ 0` (the SVT threshold). */
  readonly mu: number;
  /** Maximum number of coordinate-descent iterations (≥ 1). */
  readonly iters: number;
  /** Coefficient `λ` of `Σ δ_i` in the result; default 1. */
  readonly lambda?: number;
  /** Relative stopping tolerance; default `1e-6`. */
  readonly tol?: number;
  /** Rank cap as a fraction `ρ ∈ (0, 1]`: keep at most `ceil(ρ · min(dOut, dIn))` singular values per `δ_i`. */
  readonly rankCap?: number;
  /**
   * Where the descent starts: `mean` (the paper's, `δ_i = 0`, so `θ₀` is first
   * the mean; default) or `zero` (`θ₀ = 0`, `δ_i = SVT(Θ_i; μ)`).
   */
  readonly start?: "mean" | "zero";
}

/** Result of {@link loreDense}. */
export interface LoreDenseResult {
  /** `θ* = θ₀ + λ Σ δ_i`. */
  readonly merged: Matrix;
  /** The approximate base `θ₀`. */
  readonly theta0: Matrix;
  /** The low-rank task vectors `δ_i`. */
  readonly deltas: Matrix[];
  /** {@link loreObjective} at the final `(θ₀, δ)`. */
  readonly objective: number;
  /** {@link loreObjective} after each iteration. */
  readonly objectives: number[];
  /** Iterations executed. */
  readonly iterations: number;
}

/** `ceil(ρ · min(dOut, dIn))`, the per-`δ_i` rank allowed by a rank-cap fraction `ρ`. */
export function loreRankLimit(rankCap: number, dOut: number, dIn: number): number {
  if (!(rankCap > 0 && rankCap <= 1)) throw new Error(`lore: rankCap must be in (0, 1], got ${rankCap}`);
  return Math.ceil(rankCap * Math.min(dOut, dIn));
}

/**
 * LoRE-Merging (papers/LoRE-Merging.txt Algorithm 1), densely: start from
 * `δ_i = 0`, `θ₀ = 0` (or, with `start: "zero"`, `δ_i = SVT(Θ_i; μ)`); each iteration sets `θ₀ = (1/n) Σ (Θ_i − δ_i)` and then
 * `δ_i = SVT(Θ_i − θ₀; μ)` (rank-capped if `rankCap`); stop after an iteration
 * when `Σ_i ‖δ_i^new − δ_i^old‖² + ‖θ₀^new − θ₀^old‖² ≤ tol² · Σ_i ‖Θ_i‖²`.
 * Result `θ* = θ₀ + λ Σ δ_i`.
 */
export function loreDense(module: ModuleGroup, opts: LoreDenseOptions): LoreDenseResult {
  const { mu, iters } = opts;
  if (!(mu >= 0) || !Number.isFinite(mu)) throw new Error(`lore: mu must be finite and ≥ 0, got ${mu}`);
  if (!Number.isInteger(iters) || iters < 1)
    throw new Error(`lore: iters must be a positive integer, got ${iters}`);
  const tol = opts.tol ?? 1e-6;
  const lambda = opts.lambda ?? 1;
  const thetas = denseTaskVectors(module);
  const n = thetas.length;
  const maxRank =
    opts.rankCap === undefined ? undefined : loreRankLimit(opts.rankCap, module.dOut, module.dIn);
  const scale2 = thetas.reduce((acc, t) => acc + frob2(t), 0);

  let deltas =
    opts.start === "zero"
      ? thetas.map((t) => svt(t, mu, maxRank))
      : thetas.map(() => Matrix.zeros(module.dOut, module.dIn));
  let theta0 = Matrix.zeros(module.dOut, module.dIn);
  const objectives: number[] = [];
  let iterations = 0;
  for (let it = 0; it < iters; it++) {
    iterations++;
    const residuals = thetas.map((t, i) => weightedSum([t, deltas[i]], [1, -1]));
    const newTheta0 = weightedSum(
      residuals,
      residuals.map(() => 1 / n),
    );
    const newDeltas = thetas.map((t) => svt(weightedSum([t, newTheta0], [1, -1]), mu, maxRank));
    let change = frob2(weightedSum([newTheta0, theta0], [1, -1]));
    newDeltas.forEach((d, i) => {
      change += frob2(weightedSum([d, deltas[i]], [1, -1]));
    });
    theta0 = newTheta0;
    deltas = newDeltas;
    objectives.push(loreObjective(theta0, deltas, thetas, mu));
    if (change <= tol * tol * scale2) break;
  }
  const merged = weightedSum([theta0, ...deltas], [1, ...deltas.map(() => lambda)]);
  return { merged, theta0, deltas, objective: objectives[objectives.length - 1], objectives, iterations };
}
