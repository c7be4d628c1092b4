import type { Matrix } from "ml-matrix";
import type { ModuleGroup } from "../types.ts";
import { denseTaskVectors, frob2, truncatedSvd, weightedSum } from "./task-vectors.ts";

/**
 * FroM's normalised layer-wise weights (papers/FroM.txt Eq. 1 and 5):
 * `w_i = ‖Θ_i‖_F^k`, except `w_i = 0` when `‖Θ_i‖_F = 0` (also for `k = 0`);
 * `ŵ_i = w_i / Σ_j w_j`, or uniform `1/n` when `Σ_j w_j = 0`.
 *
 * @param norms - the Frobenius norms `‖Θ_i‖_F` (not squared).
 * @throws if there are no norms, or `k` or a norm is negative or non-finite.
 */
export function fromWeights(norms: readonly number[], k: number): number[] {
  if (norms.length === 0) throw new Error("fromWeights: no clients");
  if (!Number.isFinite(k) || k < 0) throw new Error(`fromWeights: k must be finite and ≥ 0, got ${k}`);
  const w = norms.map((norm, i) => {
    if (!Number.isFinite(norm) || norm < 0) throw new Error(`fromWeights: client ${i} has norm ${norm}`);
    return norm === 0 ? 0 : norm ** k;
  });
  const total = w.reduce((acc, x) => acc + x, 0);
  if (total === 0) return w.map(() => 1 / w.length);
  return w.map((x) => x / total);
}

/**
 * FroM's objective with normalised weights (papers/FroM.txt Eq. 1 / Eq. 6):
 * `Σ_i ŵ_i ‖X − Θ_i‖²_F`, computed literally.
 */
export function fromObjective(x: Matrix, thetas: readonly Matrix[], weights: readonly number[]): number {
  if (thetas.length !== weights.length) {
    throw new Error(`fromObjective: ${thetas.length} task vectors but ${weights.length} weights`);
  }
  let acc = 0;
  thetas.forEach((theta, i) => {
    acc += weights[i] * frob2(weightedSum([x, theta], [1, -1]));
  });
  return acc;
}

/** Options of {@link fromDense}. */
export interface FromDenseOptions {
  /** Norm exponent `k ≥ 0` (paper: 1.0 full fine-tunes, 0.9 LoRA). */
  readonly k: number;
  /** Target rank `r` of the merged adapter; absent: full-rank closed form (Eq. 5). */
  readonly rank?: number;
  /** Linear coefficient `α` applied to the result (paper: 1.0 full, 0.7 LoRA); default 1. */
  readonly scale?: number;
}

/** Result of {@link fromDense}. */
export interface FromDenseResult {
  /** `α · X` where `X = M` (no rank) or the rank-`r` truncated SVD of `M`. */
  readonly merged: Matrix;
  /** `X` before `α`. */
  readonly unscaled: Matrix;
  /** The closed form `M = Σ ŵ_i Θ_i` (Eq. 5). */
  readonly closedForm: Matrix;
  /** `ŵ`. */
  readonly weights: number[];
  /** `Σ ŵ_i ‖X − Θ_i‖²_F` at `X` (before `α`). */
  readonly objective: number;
  /** `‖X − M‖²_F` (before `α`): 0 for the closed form, `Σ_{j>r} σ_j²` at rank `r`. */
  readonly residual: number;
  /** Balanced factors of `X` (before `α`), `X = b · a`, when `rank` was given; otherwise `null`. */
  readonly factors: { readonly b: Matrix; readonly a: Matrix } | null;
}

/**
 * FroM (papers/FroM.txt): closed form `M = Σ ŵ_i Θ_i` (Eq. 5) with
 * `ŵ` from {@link fromWeights}; with `rank` given, the global optimum of the
 * rank-constrained Eq. 6 (normalised weights), i.e. the rank-`r` truncated SVD
 * of `M` (Eckart–Young, since `Σ ŵ_i ‖X − Θ_i‖² = ‖X − M‖² + const`).
 * Returns `α · X`; the objective and residual are for `X` before `α`.
 */
export function fromDense(module: ModuleGroup, opts: FromDenseOptions): FromDenseResult {
  const thetas = denseTaskVectors(module);
  const weights = fromWeights(
    thetas.map((t) => Math.sqrt(frob2(t))),
    opts.k,
  );
  const closedForm = weightedSum(thetas, weights);
  let unscaled = closedForm;
  let factors: FromDenseResult["factors"] = null;
  if (opts.rank !== undefined) {
    const svd = truncatedSvd(closedForm, opts.rank);
    factors = { b: svd.b, a: svd.a };
    unscaled = svd.b.mmul(svd.a);
  }
  const scale = opts.scale ?? 1;
  return {
    merged: weightedSum([unscaled], [scale]),
    unscaled,
    closedForm,
    weights,
    objective: fromObjective(unscaled, thetas, weights),
    residual: frob2(weightedSum([unscaled, closedForm], [1, -1])),
    factors,
  };
}
