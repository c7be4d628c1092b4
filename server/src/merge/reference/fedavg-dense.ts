import type { Matrix } from "ml-matrix";
import type { ModuleGroup } from "../types.ts";
import { denseTaskVectors, requireClients, weightedSum } from "./task-vectors.ts";

/**
 * FedAvg coefficients `c_i = n_i / Σ_j n_j` from per-client sample counts, or
 * uniform `1/n` when `samples` is absent.
 *
 * @throws if `samples` has the wrong length, a negative or non-finite count, or sums to 0.
 */
export function fedavgCoefficients(n: number, samples?: readonly number[]): number[] {
  if (n <= 0) throw new Error("fedavg: no clients");
  if (samples === undefined) return Array.from({ length: n }, () => 1 / n);
  if (samples.length !== n) throw new Error(`fedavg: ${samples.length} sample counts for ${n} clients`);
  samples.forEach((s, i) => {
    if (!Number.isFinite(s) || s < 0) throw new Error(`fedavg: client ${i} has invalid sample count ${s}`);
  });
  const total = samples.reduce((acc, s) => acc + s, 0);
  if (total <= 0) throw new Error("fedavg: sample counts sum to 0");
  return samples.map((s) => s / total);
}

/** Result of {@link fedavgDense}. */
export interface FedavgDenseResult {
  /** `M = Σ c_i Θ_i` (`dOut × dIn`). */
  readonly merged: Matrix;
  /** The coefficients `c_i`. */
  readonly weights: number[];
}

/**
 * FedAvg on products (exact): `M = Σ_i c_i Θ_i` with `c_i = samples_i / Σ samples`
 * (uniform `1/n` when `samples` is absent), MERGE-MATH.md "Baselines".
 */
export function fedavgDense(module: ModuleGroup, samples?: readonly number[]): FedavgDenseResult {
  requireClients(module);
  const weights = fedavgCoefficients(module.clients.length, samples);
  return { merged: weightedSum(denseTaskVectors(module), weights), weights };
}
