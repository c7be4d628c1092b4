import { Matrix } from "ml-matrix";
import type { ModuleGroup } from "../types.ts";
import { fedavgCoefficients } from "./fedavg-dense.ts";
import { requireClients } from "./task-vectors.ts";

/** Result of {@link fedavgFactorsDense}. */
export interface FedavgFactorsDenseResult {
  /** `B̄ Ā` (`dOut × dIn`); in general `≠ Σ c_i Θ_i`. */
  readonly merged: Matrix;
  /** `B̄ = Σ c_i s_i B_i` (`dOut × r`), scalings folded in. */
  readonly b: Matrix;
  /** `Ā = Σ c_i A_i` (`r × dIn`). */
  readonly a: Matrix;
  /** The coefficients `c_i` (as in FedAvg). */
  readonly weights: number[];
}

/**
 * FedAvg on factors (what most FL frameworks do, MERGE-MATH.md "Baselines"):
 * `B̄ = Σ c_i s_i B_i`, `Ā = Σ c_i A_i`, merged `B̄ Ā`, with `c_i` the FedAvg
 * coefficients. Inexact: `mean(B)·mean(A) ≠ mean(BA)`.
 *
 * @throws if the clients' ranks differ (naming the client, its rank and the expected rank).
 */
export function fedavgFactorsDense(
  module: ModuleGroup,
  samples?: readonly number[],
): FedavgFactorsDenseResult {
  requireClients(module);
  const { dOut, dIn, clients } = module;
  const r = clients[0].rank;
  clients.forEach((c, i) => {
    if (c.rank !== r) {
      throw new Error(
        `fedavg-factors: client ${i} has rank ${c.rank}, expected rank ${r} (ranks must be equal)`,
      );
    }
    if (c.a.length !== r * dIn || c.b.length !== dOut * r) {
      throw new Error(`fedavg-factors: client ${i} factor lengths do not match rank ${r}, ${dOut}×${dIn}`);
    }
  });
  const weights = fedavgCoefficients(clients.length, samples);
  const b = Matrix.zeros(dOut, r);
  const a = Matrix.zeros(r, dIn);
  clients.forEach((c, i) => {
    for (let row = 0; row < dOut; row++) {
      for (let j = 0; j < r; j++) b.set(row, j, b.get(row, j) + weights[i] * c.scaling * c.b[row * r + j]);
    }
    for (let j = 0; j < r; j++) {
      for (let col = 0; col < dIn; col++) a.set(j, col, a.get(j, col) + weights[i] * c.a[j * dIn + col]);
    }
  });
  return { merged: b.mmul(a), b, a, weights };
}
