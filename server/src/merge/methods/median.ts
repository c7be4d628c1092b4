/**
 * Geometric median (robust aggregation): `M = argmin_M Σ_i c_i ‖M − Θ_i‖_F`
 * (`c_i` = sample shares, equal when absent), by Weiszfeld's iterations
 * `w_i ∝ c_i / ‖M − Θ_i‖_F`, `M = Σ_i w_i Θ_i`, started from the mean. One
 * client scaling its update ×100 moves the mean by far; it moves the median
 * hardly at all. Every distance comes from the clients' inner products
 * `K_ij = ⟨Θ_i, Θ_j⟩_F` (Gram products of the stacked factors, no
 * `dOut × dIn` matrix): `‖M − Θ_j‖² = wᵀKw − 2 (Kw)_j + K_jj`. `M` is then
 * brought to the output rank like FedAvg. The reported objective is
 * `Σ_i c_i ‖M − Θ_i‖_F` of the full-rank median.
 */
import { stackModule } from "../factor-stack.ts";
import { clientInnerProducts, stackGrams } from "../grams.ts";
import type { Mat } from "../linalg/index.ts";
import type { MergeMethod } from "../method.ts";
import type { MergeOptions } from "../params.ts";
import type { ModuleGroup, ModuleMergeResult } from "../types.ts";
import { linearMerge, sampleWeights } from "./common.ts";

/** Weiszfeld's result: the median's coefficients and how it got there. */
export interface WeiszfeldResult {
  /** `w` with `M = Σ w_i Θ_i`, summing to 1. */
  readonly weights: number[];
  /** `Σ_i c_i ‖M − Θ_i‖_F`. */
  readonly objective: number;
  readonly iterations: number;
}

/** `‖Σ_i w_i Θ_i − Θ_j‖_F` for every `j`, from `K`. */
function distances(k: Mat, w: readonly number[]): number[] {
  const n = k.rows;
  const kw = new Array<number>(n).fill(0);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) kw[i] += k.data[i * n + j] * w[j];
  let wkw = 0;
  for (let i = 0; i < n; i++) wkw += w[i] * kw[i];
  return kw.map((v, j) => Math.sqrt(Math.max(0, wkw - 2 * v + k.data[j * n + j])));
}

/**
 * Weiszfeld iterations on the inner-product matrix `K` (`n × n`) with point
 * weights `c`. A distance below `1e-12 × √(mean K_jj)` (the median sits on a
 * client) is floored there, the usual safeguard. Stops when no coefficient
 * moves by more than `tol`, or after `iters` steps.
 *
 * @example
 * const { weights } = weiszfeld(clientInnerProducts(stack, grams), [0.25, 0.25, 0.25, 0.25], 100, 1e-9);
 */
export function weiszfeld(k: Mat, c: readonly number[], iters: number, tol: number): WeiszfeldResult {
  const n = k.rows;
  let scale = 0;
  for (let j = 0; j < n; j++) scale += k.data[j * n + j] / n;
  const floor = 1e-12 * Math.sqrt(Math.max(scale, Number.MIN_VALUE));
  let w = [...c];
  let iterations = 0;
  for (; iterations < iters; iterations++) {
    const d = distances(k, w);
    const inv = d.map((dj, j) => c[j] / Math.max(dj, floor));
    const sum = inv.reduce((s, v) => s + v, 0);
    const next = inv.map((v) => v / sum);
    const moved = Math.max(...next.map((v, j) => Math.abs(v - w[j])));
    w = next;
    if (moved <= tol) {
      iterations++;
      break;
    }
  }
  const d = distances(k, w);
  return { weights: w, objective: d.reduce((s, dj, j) => s + c[j] * dj, 0), iterations };
}

/** Merges one module with the geometric median of its clients' task vectors. */
export function mergeMedian(group: ModuleGroup, opts: MergeOptions): ModuleMergeResult {
  const c = sampleWeights(group.clients.length, opts.samples, group.name);
  const stack = stackModule(group);
  const grams = stackGrams(stack);
  const median = weiszfeld(clientInnerProducts(stack, grams), c, opts.iters, opts.tol);
  const result = linearMerge(group, stack, median.weights, opts, median.weights, undefined, grams);
  return {
    ...result,
    report: { ...result.report, objective: median.objective, iterations: median.iterations },
  };
}

/** The geometric median, as the registry lists it. */
export const medianMethod: MergeMethod = {
  name: "median",
  title: "Geometric median",
  summary: "Weiszfeld iterations, weights ∝ 1/‖M − Θ_i‖ (robust to a client scaling its update)",
  params: ["iters", "tol"],
  denseWeights: "uniform",
  usesSamples: true,
  merge: mergeMedian,
  reference: "median-dense",
};
