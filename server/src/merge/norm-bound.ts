/**
 * Per-module norm bounds: before a module is merged, every client's task
 * vector norm `‖Θ_i‖_F = ‖s_i B_i A_i‖_F` (float64, from the factors' `r × r`
 * Grams) is compared with the bound — absolute, or a multiple of the median
 * client norm of the module, the smaller when both are set. A client above it
 * is clipped (its scaling, so `B_i`, rescaled to `bound / ‖Θ_i‖`: FroM then
 * weighs the clipped norm) or rejected (left out of this module, weight 0).
 * Dense equation: `Θ_i ← Θ_i · min(1, bound / ‖Θ_i‖_F)`.
 */
import { clientNorm2 } from "./grams.ts";
import type { MergeOptions } from "./params.ts";
import type { BoundedClient, ModuleGroup } from "./types.ts";

/** A module group after its norm bound. */
export interface BoundedGroup {
  readonly group: ModuleGroup;
  /** Indices (in the original group) of the clients kept, in order. */
  readonly kept: readonly number[];
  readonly bounded: readonly BoundedClient[];
}

/** The median of `xs` (mean of the middle two for an even count). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * Applies `opts`' norm bound to `group` (nothing to do without one).
 *
 * @example
 * const { group: g, kept } = boundNorms(group, resolveOptions({ method: "from", normBoundMedian: 3 }));
 */
export function boundNorms(group: ModuleGroup, opts: MergeOptions): BoundedGroup {
  const all = group.clients.map((_, i) => i);
  if (opts.normBound === undefined && opts.normBoundMedian === undefined) {
    return { group, kept: all, bounded: [] };
  }
  const norms = group.clients.map((c) => Math.sqrt(clientNorm2(c, group.dOut, group.dIn)));
  const bound = Math.min(
    opts.normBound ?? Number.POSITIVE_INFINITY,
    opts.normBoundMedian === undefined ? Number.POSITIVE_INFINITY : opts.normBoundMedian * median(norms),
  );
  const bounded: BoundedClient[] = [];
  const kept: number[] = [];
  const clients = [];
  for (const [i, c] of group.clients.entries()) {
    if (!(norms[i] > bound)) {
      kept.push(i);
      clients.push(c);
      continue;
    }
    bounded.push({ client: i, norm: norms[i], bound, action: opts.normBoundAction });
    if (opts.normBoundAction === "clip") {
      kept.push(i);
      clients.push({ ...c, scaling: c.scaling * (bound / norms[i]) });
    }
  }
  return { group: { ...group, clients }, kept, bounded };
}
