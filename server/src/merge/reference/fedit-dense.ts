import type { ModuleGroup } from "../types.ts";
import { type FedavgFactorsDenseResult, fedavgFactorsDense } from "./fedavg-factors-dense.ts";
import { requireClients } from "./task-vectors.ts";

/**
 * FedIT as its paper does it, densely: every client's LoRA factors
 * zero-padded to the largest rank `r` (`B_i` gains zero columns, `A_i` zero
 * rows, so `B_i A_i` is unchanged), then FedAvg of the factors —
 * `B̄ = Σ c_i s_i B_i`, `Ā = Σ c_i A_i`, merged `B̄ Ā`.
 */
export function feditDense(module: ModuleGroup, samples?: readonly number[]): FedavgFactorsDenseResult {
  requireClients(module);
  const r = Math.max(...module.clients.map((c) => c.rank));
  const { dOut, dIn } = module;
  const padded: ModuleGroup = {
    ...module,
    clients: module.clients.map((c) => {
      const b = new Float32Array(dOut * r);
      for (let row = 0; row < dOut; row++) b.set(c.b.subarray(row * c.rank, (row + 1) * c.rank), row * r);
      const a = new Float32Array(r * dIn);
      a.set(c.a);
      return { ...c, a, b, rank: r };
    }),
  };
  return fedavgFactorsDense(padded, samples);
}
