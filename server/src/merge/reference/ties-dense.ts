import { Matrix } from "ml-matrix";
import type { ModuleGroup } from "../types.ts";
import { denseTaskVectors } from "./task-vectors.ts";

/**
 * TIES "trim" of one task vector (Yadav et al. 2023, step 1): with
 * `k = round(density · dOut · dIn)` (JavaScript `Math.round`, halves up) and
 * `τ` the `k`-th largest `|x|`, keep the entries with `|x| ≥ τ` and `x ≠ 0`
 * (ties at `τ` are all kept); `k = 0` keeps nothing.
 */
export function tiesTrim(theta: Matrix, density: number): Matrix {
  if (!(density >= 0 && density <= 1)) throw new Error(`ties: density must be in [0, 1], got ${density}`);
  const values = theta.to1DArray();
  const k = Math.round(density * values.length);
  const out = Matrix.zeros(theta.rows, theta.columns);
  if (k === 0) return out;
  const tau = values.map(Math.abs).sort((x, y) => y - x)[k - 1];
  for (let p = 0; p < theta.rows; p++) {
    for (let q = 0; q < theta.columns; q++) {
      const x = theta.get(p, q);
      if (x !== 0 && Math.abs(x) >= tau) out.set(p, q, x);
    }
  }
  return out;
}

/** Options of {@link tiesDense}. */
export interface TiesDenseOptions {
  /** Fraction of entries each client keeps, in `[0, 1]`. */
  readonly density: number;
  /** Final multiplier `λ`; default 1. */
  readonly lambda?: number;
}

/** Result of {@link tiesDense}. */
export interface TiesDenseResult {
  /** `λ ·` disjoint mean. */
  readonly merged: Matrix;
  /** Each client's trimmed task vector. */
  readonly trimmed: Matrix[];
  /** The elected sign `γ = sign(Σ_i trimmed_i)` (entries −1, 0, +1). */
  readonly sign: Matrix;
}

/**
 * TIES-Merging (Yadav et al. 2023): trim each `Θ_i` ({@link tiesTrim}),
 * elect `γ = sign(Σ_i trimmed_i)` elementwise, and take the disjoint mean
 * over the clients whose trimmed entry is non-zero with sign `γ` (0 where
 * there are none or `γ = 0`); multiply by `λ`.
 */
export function tiesDense(module: ModuleGroup, opts: TiesDenseOptions): TiesDenseResult {
  const lambda = opts.lambda ?? 1;
  const trimmed = denseTaskVectors(module).map((t) => tiesTrim(t, opts.density));
  const { dOut, dIn } = module;
  const merged = Matrix.zeros(dOut, dIn);
  const sign = Matrix.zeros(dOut, dIn);
  for (let p = 0; p < dOut; p++) {
    for (let q = 0; q < dIn; q++) {
      let total = 0;
      for (const t of trimmed) total += t.get(p, q);
      const gamma = Math.sign(total);
      sign.set(p, q, gamma);
      if (gamma === 0) continue;
      let sum = 0;
      let count = 0;
      for (const t of trimmed) {
        const x = t.get(p, q);
        if (x !== 0 && Math.sign(x) === gamma) {
          sum += x;
          count++;
        }
      }
      if (count > 0) merged.set(p, q, (lambda * sum) / count);
    }
  }
  return { merged, trimmed, sign };
}

/**
 * One entry of TIES over aligned blocks (KnOTS, Core Space): each client's
 * value kept when `|x| ≥ τ_i`, the sign of the kept sum elected, the mean of
 * the kept values of that sign (0 where there are none).
 */
export function tiesEntry(xs: readonly number[], tau: readonly number[]): number {
  const kept = xs.map((x, i) => (Math.abs(x) >= tau[i] ? x : 0));
  const sign = Math.sign(kept.reduce((a, x) => a + x, 0));
  const agree = kept.filter((x) => x !== 0 && Math.sign(x) === sign);
  return sign === 0 || agree.length === 0 ? 0 : agree.reduce((a, x) => a + x, 0) / agree.length;
}
