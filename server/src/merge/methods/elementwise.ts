/**
 * Helpers for elementwise methods (TIES, DARE), which must densify: task
 * vectors are produced in row blocks so memory stays at
 * `clients × block × dIn`, never `clients × dOut × dIn`.
 */
import { f32, gemm } from "../kernels/device-matmul.ts";
import type { MergeOptions } from "../params.ts";
import { truncateDense } from "../solvers/truncated-svd.ts";
import type { ClientLora, ModuleGroup, ModuleMergeResult } from "../types.ts";
import { outputRank, scaled } from "./common.ts";

/** Rows per block so that one block of every client holds about `budget` floats. */
export function blockRows(group: ModuleGroup, budget = 1 << 25): number {
  return Math.max(
    1,
    Math.min(group.dOut, Math.floor(budget / Math.max(1, group.clients.length * group.dIn))),
  );
}

/** Rows `[r0, r1)` of `Θ = s B A` (`(r1 − r0) × dIn`). Dense meaning: `Θ[r0:r1, :]`. */
export function taskVectorRows(c: ClientLora, dIn: number, r0: number, r1: number): Float32Array {
  const rows = r1 - r0;
  const b = new Float32Array(rows * c.rank);
  for (let i = 0; i < b.length; i++) b[i] = c.b[r0 * c.rank + i] * c.scaling;
  return gemm(f32(rows, c.rank, b), f32(c.rank, dIn, c.a)).data;
}

/** The whole task vector `Θ = s B A` (`dOut × dIn`). */
export function taskVector(c: ClientLora, dOut: number, dIn: number): Float32Array {
  return taskVectorRows(c, dIn, 0, dOut);
}

/**
 * The result of an elementwise method: its dense merged task vector `merged`
 * (`dOut × dIn`) truncated to the output rank, then scaled by λ.
 * Dense meaning: `λ · U_r Σ_r V_rᵀ` of `merged`.
 */
export function denseResult(
  group: ModuleGroup,
  merged: Float32Array,
  opts: MergeOptions,
  weights: number[],
): ModuleMergeResult {
  const t = truncateDense(
    f32(group.dOut, group.dIn, merged),
    outputRank(group, opts),
    { seed: opts.seed, ...opts.truncation },
    group.name,
  );
  return {
    name: group.name,
    merged: scaled(t.merged, opts.scale),
    report: { weights, objective: null, residual: t.residual, iterations: t.iterations, solver: "dense" },
  };
}
