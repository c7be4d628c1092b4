/**
 * FedAvg on factors, as most FL frameworks do: `B̄ = Σ c_i s_i B_i`,
 * `Ā = Σ c_i A_i`, result `B̄ Ā`. Inexact (`mean(B)·mean(A) ≠ mean(BA)`);
 * the report's residual is `‖B̄Ā − Σ c_i Θ_i‖²`, the error against exact
 * FedAvg, computed from Gram matrices — only up to `RESIDUAL_MAX_WIDTH`
 * stacked columns, since that diagnostic costs `O(R²d)`, far more than the
 * merge itself (`null` above it).
 */
import { MergeInputError } from "../errors.ts";
import { clientTerms, columnCoefficients, stackTerms } from "../factor-stack.ts";
import { combinationNorm2, stackGrams } from "../grams.ts";
import type { MergeMethod } from "../method.ts";
import type { MergeOptions } from "../params.ts";
import type { ModuleGroup, ModuleMergeResult } from "../types.ts";
import { sampleWeights, scaled } from "./common.ts";

/** Largest stacked rank `Σ r_i + r` for which the residual is reported. */
export const RESIDUAL_MAX_WIDTH = 1024;

/** Merges one module by averaging A's and B's separately (needs equal ranks). */
export function mergeFedavgFactors(group: ModuleGroup, opts: MergeOptions): ModuleMergeResult {
  const r = group.clients[0].rank;
  group.clients.forEach((c, i) => {
    if (c.rank !== r) {
      throw new MergeInputError(
        `fedavg-factors needs equal ranks: client ${i} has rank ${c.rank} on ${group.name}, expected ${r}`,
        group.name,
        i,
      );
    }
  });
  if (typeof opts.rank === "number" && opts.rank !== r) {
    throw new MergeInputError(
      `fedavg-factors keeps the clients' rank ${r}; --rank ${opts.rank} is not possible`,
      group.name,
    );
  }
  return meanFactors(group, opts, r, "factors");
}

/**
 * `B̄ = Σ c_i s_i [B_i 0]`, `Ā = Σ c_i [A_i; 0]` at rank `r` (each client's
 * factors zero-padded to `r`; `c_i` the sample shares), merged `B̄Ā`, with
 * the report's residual `‖B̄Ā − Σ c_i Θ_i‖²` from Gram matrices (up to
 * `RESIDUAL_MAX_WIDTH` stacked columns).
 */
export function meanFactors(
  group: ModuleGroup,
  opts: MergeOptions,
  r: number,
  solver: string,
): ModuleMergeResult {
  const c = sampleWeights(group.clients.length, opts.samples, group.name);
  const b = new Float32Array(group.dOut * r);
  const a = new Float32Array(r * group.dIn);
  group.clients.forEach((cl, i) => {
    const cb = c[i] * cl.scaling;
    for (let row = 0; row < group.dOut; row++) {
      for (let j = 0; j < cl.rank; j++) b[row * r + j] += cb * cl.b[row * cl.rank + j];
    }
    for (let j = 0; j < cl.a.length; j++) a[j] += c[i] * cl.a[j];
  });
  const n = group.clients.length;
  const width = group.clients.reduce((sum, cl) => sum + cl.rank, 0) + r;
  let residual: number | null = null;
  if (width <= RESIDUAL_MAX_WIDTH) {
    const terms = [...clientTerms(group), { client: n, rank: r, b, a }];
    const stack = stackTerms(group.name, group.dOut, group.dIn, n + 1, terms);
    residual = Math.max(
      0,
      combinationNorm2(stackGrams(stack), columnCoefficients(stack, [...c.map((x) => -x), 1])),
    );
  }
  return {
    name: group.name,
    merged: scaled({ a, b, rank: r }, opts.scale),
    report: { weights: c, objective: null, residual, iterations: 0, solver },
  };
}

/** FedAvg of the factors, as the registry lists it. */
export const fedavgFactorsMethod: MergeMethod = {
  name: "fedavg-factors",
  title: "FedAvg of factors",
  summary: "sample-weighted means of the A and of the B factors (inexact, the classic baseline)",
  params: [],
  denseWeights: "samples",
  usesSamples: true,
  merge: mergeFedavgFactors,
  reference: "fedavg-factors-dense",
};
