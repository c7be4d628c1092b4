import type { Matrix } from "ml-matrix";
import type { ModuleGroup } from "../types.ts";
import { fedavgCoefficients } from "./fedavg-dense.ts";
import { denseTaskVectors, requireClients, weightedSum } from "./task-vectors.ts";

/** Result of {@link medianDense}. */
export interface MedianDenseResult {
  /** The geometric median `M` (`dOut × dIn`). */
  readonly merged: Matrix;
  /** `w` with `M = Σ w_i Θ_i`. */
  readonly weights: number[];
  /** `Σ c_i ‖M − Θ_i‖_F`. */
  readonly objective: number;
}

/**
 * The geometric median `argmin_M Σ_i c_i ‖M − Θ_i‖_F` by Weiszfeld's
 * iterations on the dense task vectors (`M ← Σ (c_i/d_i) Θ_i / Σ c_i/d_i`,
 * `d_i = ‖M − Θ_i‖_F`), from the mean, with the same floor and stopping rule
 * as the factored solver.
 */
export function medianDense(
  module: ModuleGroup,
  opts: { readonly samples?: readonly number[]; readonly iters: number; readonly tol: number },
): MedianDenseResult {
  requireClients(module);
  const thetas = denseTaskVectors(module);
  const c = fedavgCoefficients(thetas.length, opts.samples);
  const scale = thetas.reduce((s, t) => s + t.norm("frobenius") ** 2, 0) / thetas.length;
  const floor = 1e-12 * Math.sqrt(Math.max(scale, Number.MIN_VALUE));
  let w = [...c];
  const dist = (m: Matrix) => thetas.map((t) => m.clone().sub(t).norm("frobenius"));
  for (let it = 0; it < opts.iters; it++) {
    const d = dist(weightedSum(thetas, w));
    const inv = d.map((dj, j) => c[j] / Math.max(dj, floor));
    const sum = inv.reduce((s, v) => s + v, 0);
    const next = inv.map((v) => v / sum);
    const moved = Math.max(...next.map((v, j) => Math.abs(v - w[j])));
    w = next;
    if (moved <= opts.tol) break;
  }
  const merged = weightedSum(thetas, w);
  const objective = dist(merged).reduce((s, dj, j) => s + c[j] * dj, 0);
  return { merged, weights: w, objective };
}
