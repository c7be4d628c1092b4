import type { Matrix } from "ml-matrix";
import type { ModuleGroup } from "../types.ts";
import { denseTaskVectors, requireClients, truncatedSvd, weightedSum } from "./task-vectors.ts";

/**
 * Central DP's aggregate, dense (Flower's server-side fixed clipping):
 * `M = (1/m) Σ f_i Θ_i` with the clip factors `f_i`, plus the noise matrix
 * `noise` (`dOut × dIn`, row-major; zeros for none), truncated to rank `r`
 * by a full SVD of `M + N`.
 */
export function centralDpDense(
  module: ModuleGroup,
  clipFactors: readonly number[],
  noise: Float32Array | undefined,
  rank: number,
): { readonly mean: Matrix; readonly noisy: Matrix; readonly product: Matrix } {
  requireClients(module);
  const m = module.clients.length;
  const mean = weightedSum(
    denseTaskVectors(module),
    clipFactors.map((f) => f / m),
  );
  const noisy = mean.clone();
  if (noise !== undefined) {
    for (let i = 0; i < module.dOut; i++)
      for (let j = 0; j < module.dIn; j++) noisy.set(i, j, noisy.get(i, j) + noise[i * module.dIn + j]);
  }
  const t = truncatedSvd(noisy, rank);
  return { mean, noisy, product: t.b.mmul(t.a) as Matrix };
}
