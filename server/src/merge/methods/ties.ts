/**
 * TIES-Merging (Yadav et al.): per client keep the top `density` fraction of
 * entries by magnitude (trim), elect each entry's sign as the sign of the
 * trimmed sum, average the entries that agree with it (disjoint mean), times
 * λ; then the best rank-`r` approximation of that dense matrix. Elementwise,
 * so it densifies (in row blocks).
 */
import { kthLargestAbs } from "../kernels/select.ts";
import type { MergeMethod } from "../method.ts";
import type { MergeOptions } from "../params.ts";
import type { ModuleGroup, ModuleMergeResult } from "../types.ts";
import { blockRows, denseResult, taskVector, taskVectorRows } from "./elementwise.ts";

/** Merges one module with TIES (λ = `scale`). */
export function mergeTies(group: ModuleGroup, opts: MergeOptions): ModuleMergeResult {
  const { dOut, dIn } = group;
  const total = dOut * dIn;
  const keep = Math.round(opts.density * total);
  // τ_i: the keep-th largest |Θ_i|; entries with |x| ≥ τ_i (and x ≠ 0) survive.
  const tau = group.clients.map((c) =>
    keep === 0 ? Number.POSITIVE_INFINITY : kthLargestAbs(taskVector(c, dOut, dIn), keep),
  );
  const merged = new Float32Array(total);
  const step = blockRows(group);
  for (let r0 = 0; r0 < dOut; r0 += step) {
    const r1 = Math.min(dOut, r0 + step);
    const blocks = group.clients.map((c, i) => {
      const x = taskVectorRows(c, dIn, r0, r1);
      for (let j = 0; j < x.length; j++) if (Math.abs(x[j]) < tau[i]) x[j] = 0;
      return x;
    });
    const size = (r1 - r0) * dIn;
    for (let j = 0; j < size; j++) {
      let sum = 0;
      for (const x of blocks) sum += x[j];
      const sign = Math.sign(sum);
      if (sign === 0) continue;
      let acc = 0;
      let count = 0;
      for (const x of blocks) {
        if (x[j] !== 0 && Math.sign(x[j]) === sign) {
          acc += x[j];
          count++;
        }
      }
      if (count > 0) merged[r0 * dIn + j] = acc / count;
    }
  }
  return denseResult(
    group,
    merged,
    opts,
    group.clients.map(() => 1 / group.clients.length),
  );
}

/** TIES, as the registry lists it. */
export const tiesMethod: MergeMethod = {
  name: "ties",
  title: "TIES",
  summary: "trim to the top density of magnitudes, elect signs, disjoint mean",
  params: ["density"],
  check: (o) => (o.rank === "full" ? "ties produces a dense update; choose a numeric rank" : undefined),
  denseWeights: "uniform",
  usesSamples: false,
  merge: mergeTies,
  reference: "ties-dense",
};
