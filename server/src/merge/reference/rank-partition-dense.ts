import { Matrix } from "ml-matrix";
import type { ModuleGroup } from "../types.ts";
import { fedavgCoefficients } from "./fedavg-dense.ts";
import { requireClients } from "./task-vectors.ts";

/**
 * Rank-partition aggregation (raFLoRA) on dense matrices: partitions cut at
 * the clients' distinct ranks; partition `p` is
 * `Σ_{i: r_i ≥ end_p} (w_i / W_p) s_i B_i[:, p] A_i[p, :]`, `w_i` the FedAvg
 * coefficients of `samples`, `W_p` their sum over the clients reaching `p`;
 * the merged update is the sum over partitions (before any rank step).
 */
export function rankPartitionDense(module: ModuleGroup, samples?: readonly number[]): Matrix {
  requireClients(module);
  const { dOut, dIn, clients } = module;
  const w = fedavgCoefficients(clients.length, samples);
  const ends = [...new Set(clients.map((c) => c.rank))].sort((x, y) => x - y);
  const out = Matrix.zeros(dOut, dIn);
  let start = 0;
  for (const end of ends) {
    const members = clients.map((c, i) => (c.rank >= end ? i : -1)).filter((i) => i >= 0);
    const total = members.reduce((s, i) => s + w[i], 0);
    for (const i of members) {
      const c = clients[i];
      const coef = (c.scaling * w[i]) / total;
      for (let p = 0; p < dOut; p++) {
        for (let q = 0; q < dIn; q++) {
          let acc = 0;
          for (let k = start; k < end; k++) acc += c.b[p * c.rank + k] * c.a[k * dIn + q];
          out.set(p, q, out.get(p, q) + coef * acc);
        }
      }
    }
    start = end;
  }
  return out;
}
