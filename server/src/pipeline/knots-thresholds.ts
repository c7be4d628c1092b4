/**
 * KnOTS with `--knots-scope adapter` trims each client over its whole
 * adapter, as the KnOTS code does: before the modules are merged one by one,
 * one pass over every module computes each client's top-k threshold over
 * all its blocks (`merge/methods/knots.ts`), which the module merges then
 * share (`MergeOptions.knotsThresholds`).
 */
import { KnotsThresholds } from "../merge/methods/knots.ts";
import type { MergeOptions } from "../merge/params.ts";
import type { ModuleGroup } from "../merge/types.ts";

/** Where the modules come from (structurally a `GroupSource` of `merge-adapters.ts`). */
export interface ModuleSource {
  readonly modules: readonly string[];
  loadModule(name: string): Promise<ModuleGroup> | ModuleGroup;
}

/** Whether `opts` need each client's threshold over the whole adapter. */
export function needsAdapterThresholds(opts: MergeOptions): boolean {
  return (
    opts.method === "knots" &&
    opts.knotsScope === "adapter" &&
    opts.knotsCombine !== "mean" &&
    opts.knotsThresholds === undefined
  );
}

/**
 * `opts` with `knotsThresholds` filled in from one pass over `source`'s
 * modules where they need them ({@link needsAdapterThresholds}), else
 * `opts` unchanged.
 *
 * @example
 * const options = await withKnotsThresholds(source, opts);
 */
export async function withKnotsThresholds(source: ModuleSource, opts: MergeOptions): Promise<MergeOptions> {
  if (!needsAdapterThresholds(opts) || source.modules.length === 0) return opts;
  let acc: KnotsThresholds | undefined;
  for (const name of source.modules) {
    const group = await source.loadModule(name);
    acc ??= new KnotsThresholds(group.clients.length, opts);
    acc.add(group);
  }
  return acc === undefined ? opts : { ...opts, knotsThresholds: acc.thresholds() };
}
