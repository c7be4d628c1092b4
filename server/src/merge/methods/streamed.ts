/**
 * The methods that have a `streamed` merge (FroM, FedAvg, task arithmetic) on
 * a `ModuleSource`: the same merges as their module merges, on the product-only route,
 * reading each client's factors from storage on every pass instead of
 * holding the module's factors. One pass gives the clients' norms (FroM's
 * weights and the stream route's stopping bound); every product of the
 * iteration, and the final mapping to factors, is another.
 */
import { validateMeta } from "../engine.ts";
import { clientNorm2F32 } from "../grams.ts";
import { stridedGemm } from "../kernels/device-matmul.ts";
import type { MergeOptions } from "../params.ts";
import { chooseRoute } from "../solvers/truncated-svd.ts";
import { streamedStack } from "../streamed-stack.ts";
import type { ModuleMergeResult, ModuleMeta, ModuleSource } from "../types.ts";
import { outputRank } from "./common.ts";
import { methodOf } from "./registry.ts";

/**
 * Whether `meta` under `opts` merges from a source: a linear method at a
 * rank on a route that only multiplies (`stream`, or the dense product),
 * without norm bounds, on a device with strided products (native BLAS).
 */
export function streamable(meta: ModuleMeta, opts: MergeOptions): boolean {
  return stridedGemm() !== undefined && streamableOptions(meta, opts);
}

/** `streamable` without the device (for a caller whose workers have it, e.g. the merge pool's). */
export function streamableOptions(meta: ModuleMeta, opts: MergeOptions): boolean {
  if (opts.dp !== undefined) return false; // central DP adds dense noise: merged from loaded modules
  const streamed = methodOf(opts.method).streamed;
  if (streamed === undefined || streamed.when?.(opts) === false) return false;
  if (typeof opts.rank !== "number" || opts.normBound !== undefined || opts.normBoundMedian !== undefined)
    return false;
  const width = meta.clients.reduce((s, c) => s + c.rank, 0);
  const route = chooseRoute(meta.dOut, meta.dIn, width, outputRank(meta, opts), opts.truncation);
  return route === "stream" || route === "dense";
}

/** Merges one module of `source` (see the module comment); `streamable` must hold. */
export function mergeStreamed(source: ModuleSource, opts: MergeOptions): ModuleMergeResult {
  if (!streamable(source, opts)) {
    throw new Error(`${source.name}: ${opts.method} with these options does not merge from a source`);
  }
  validateMeta(source, opts);
  const stack = streamedStack(source);
  const norms2: number[] = [];
  stack.eachTerm((t) => {
    norms2.push(
      clientNorm2F32({ a: t.a, b: t.b, rank: t.rank, scaling: t.scale ?? 1 }, source.dOut, source.dIn),
    );
  });
  return methodOf(opts.method).streamed!.merge(source, stack, norms2, opts);
}
