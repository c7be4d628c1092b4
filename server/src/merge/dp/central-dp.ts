/**
 * One module of a merge under central differential privacy (Flower's
 * server-side fixed clipping): each client's update clipped to `C` over its
 * whole adapter (the factor `f_i = min(1, C / ‖Θ_i‖_F)` comes from the
 * caller, who sees every module), the uniform mean `M = Σ f_i Θ_i / m`,
 * Gaussian noise `N` with `σ = z · C / m` on every entry, and the rank-`r`
 * step on `M + N` as post-processing, in factored form
 * (`solvers/noisy-truncation.ts`). With `z = 0` it is exactly the clipped
 * mean at rank `r`. Only the uniform mean has the sensitivity `C / m` the
 * noise is calibrated to, so only `fedavg` (whose sample weights DP
 * replaces by the uniform mean) takes `dp`; see docs/privacy.md.
 */
import { MergeOptionsError } from "../errors.ts";
import { stackModule } from "../factor-stack.ts";
import { linearMerge, outputRank, scaled } from "../methods/common.ts";
import type { CentralDp, MergeOptions } from "../params.ts";
import { truncateNoisyStack } from "../solvers/noisy-truncation.ts";
import type { ModuleGroup, ModuleMergeResult } from "../types.ts";
import { gaussianNoise } from "./gaussian-noise.ts";

/** Why `opts` cannot merge under central DP, or `undefined`. */
export function centralDpProblem(
  opts: MergeOptions,
  dp: Pick<CentralDp, "clipNorm" | "noiseMultiplier">,
): string | undefined {
  if (opts.method !== "fedavg") {
    return `central DP merges the uniform mean of clipped updates (method fedavg); ${opts.method}'s weights depend on the updates, so the noise would not cover its sensitivity (docs/privacy.md)`;
  }
  if (opts.rank === "full") return "central DP needs an output rank: the noise makes every module full-rank";
  if (opts.normBound !== undefined || opts.normBoundMedian !== undefined) {
    return "central DP clips each update to the clip norm itself; leave the norm bound out";
  }
  if (!(dp.clipNorm > 0 && Number.isFinite(dp.clipNorm)))
    return `the clip norm must be above 0, got ${dp.clipNorm}`;
  if (!(dp.noiseMultiplier >= 0 && Number.isFinite(dp.noiseMultiplier))) {
    return `the noise multiplier must be at least 0, got ${dp.noiseMultiplier}`;
  }
  return undefined;
}

/**
 * Merges `group` under `dp` (see the module comment).
 *
 * @example
 * mergeCentralDp(group, { ...opts, dp: { clipNorm: 1, noiseMultiplier: 1.1, clipFactors, noiseKey } });
 */
export function mergeCentralDp(group: ModuleGroup, opts: MergeOptions, dp: CentralDp): ModuleMergeResult {
  const problem = centralDpProblem(opts, dp);
  if (problem !== undefined) throw new MergeOptionsError(problem);
  const m = group.clients.length;
  if (dp.clipFactors.length !== m) {
    throw new MergeOptionsError(`${group.name}: ${dp.clipFactors.length} clip factors for ${m} clients`);
  }
  const coeffs = dp.clipFactors.map((f) => f / m);
  const stack = stackModule(group);
  if (dp.noiseMultiplier === 0) {
    const exact = linearMerge(group, stack, coeffs, opts, coeffs);
    return { ...exact, report: { ...exact.report, objective: null } };
  }
  const sigma = (dp.noiseMultiplier * dp.clipNorm) / m;
  const noise = gaussianNoise(dp.noiseKey, group.name, group.dOut, group.dIn, sigma);
  const t = truncateNoisyStack(stack, coeffs, noise, outputRank(group, opts), {
    seed: opts.seed,
    ...opts.truncation,
  });
  return {
    name: group.name,
    merged: scaled(t.merged, opts.scale),
    report: { weights: coeffs, objective: null, residual: null, iterations: t.iterations, solver: t.solver },
  };
}
