/**
 * DARE (Yu et al.): drop each task-vector entry with probability `p`
 * (seeded, counter-based: the same mask whatever the block order), rescale
 * survivors by `1/(1 − p)`, combine by mean or sum, times λ; then the best
 * rank-`r` approximation. Elementwise, so it densifies (in row blocks).
 */
import type { MergeMethod } from "../method.ts";
import type { MergeOptions } from "../params.ts";
import { streamKey, uniformAt } from "../random.ts";
import type { ModuleGroup, ModuleMergeResult } from "../types.ts";
import { blockRows, denseResult, taskVectorRows } from "./elementwise.ts";

/** Merges one module with DARE (λ = `scale`). */
export function mergeDare(group: ModuleGroup, opts: MergeOptions): ModuleMergeResult {
  const { dOut, dIn } = group;
  const n = group.clients.length;
  const p = opts.drop;
  const coef = (opts.combine === "sum" ? 1 : 1 / n) / (1 - p);
  const merged = new Float32Array(dOut * dIn);
  const step = blockRows(group);
  const keys = group.clients.map((_, i) => streamKey(opts.seed, group.name, i));
  for (let r0 = 0; r0 < dOut; r0 += step) {
    const r1 = Math.min(dOut, r0 + step);
    group.clients.forEach((c, i) => {
      const x = taskVectorRows(c, dIn, r0, r1);
      const base = r0 * dIn;
      for (let j = 0; j < x.length; j++) {
        if (uniformAt(keys[i], base + j) >= p) merged[base + j] += coef * x[j];
      }
    });
  }
  return denseResult(
    group,
    merged,
    opts,
    group.clients.map(() => (opts.combine === "sum" ? 1 : 1 / n)),
  );
}

/** DARE, as the registry lists it. */
export const dareMethod: MergeMethod = {
  name: "dare",
  title: "DARE",
  summary: "drop entries with probability p and rescale the rest by 1/(1 − p), then combine",
  params: ["drop", "combine"],
  check: (o) =>
    o.combine === "from"
      ? "dare combines with mean or sum"
      : o.rank === "full"
        ? "dare produces a dense update; choose a numeric rank"
        : undefined,
  denseWeights: "uniform",
  usesSamples: false,
  merge: mergeDare,
  reference: "dare-dense",
};
