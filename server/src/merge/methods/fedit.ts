/**
 * FedIT (Zhang et al., "Towards Building the Federatedgpt: Federated
 * Instruction Tuning", ICASSP 2024), the federated-LoRA baseline every
 * paper compares against: the sample-weighted means of the A factors and of
 * the B factors, each client's zero-padded to the largest rank as HetLoRA
 * does for unequal ranks — `B̄ = Σ c_i s_i [B_i 0]`, `Ā = Σ c_i [A_i; 0]`,
 * result `B̄Ā` at rank `max r_i`. Inexact (`B̄Ā ≠ Σ c_i Θ_i`): the report's
 * residual is `‖B̄Ā − Σ c_i Θ_i‖²`, from Gram matrices.
 */
import { MergeInputError } from "../errors.ts";
import type { MergeMethod } from "../method.ts";
import type { MergeOptions } from "../params.ts";
import type { ModuleGroup, ModuleMergeResult } from "../types.ts";
import { meanFactors } from "./fedavg-factors.ts";

/** Merges one module with FedIT. */
export function mergeFedit(group: ModuleGroup, opts: MergeOptions): ModuleMergeResult {
  const r = Math.max(...group.clients.map((c) => c.rank));
  if (typeof opts.rank === "number" && opts.rank !== r) {
    throw new MergeInputError(
      `fedit keeps the largest client rank ${r} of ${group.name}; --rank ${opts.rank} is not possible`,
      group.name,
    );
  }
  return meanFactors(group, opts, r, "fedit");
}

/** FedIT, as the registry lists it. */
export const feditMethod: MergeMethod = {
  name: "fedit",
  title: "FedIT",
  summary: "sample-weighted means of the A and of the B factors, zero-padded to the largest rank (inexact)",
  params: [],
  check: (o) =>
    o.rank === "full" ? "fedit keeps the largest client rank; --rank full is not possible" : undefined,
  denseWeights: "samples",
  usesSamples: true,
  merge: mergeFedit,
  reference: "fedit-dense",
};
