/**
 * FroM's Algorithm 1 exactly as the paper writes it, on dense task vectors
 * (`Θ_i = s_i B_i A_i` materialised, `dOut × dIn` each), products on tfjs:
 * the baseline the factored engine is compared against in the benchmark.
 * Per iteration `O(n r dOut dIn)`; the loss sums `‖BA − Θ_i‖²` densely.
 */
import { clientNorm2 } from "../server/src/merge/grams.ts";
import { f32, gemm, transposeF32 } from "../server/src/merge/kernels/device-matmul.ts";
import { pinvSym } from "../server/src/merge/linalg/index.ts";
import { frobeniusWeights } from "../server/src/merge/methods/common.ts";
import { taskVector } from "../server/src/merge/methods/elementwise.ts";
import { normalAt, streamKey } from "../server/src/merge/random.ts";
import { gramCols, gramRows } from "../server/src/merge/solvers/als.ts";
import type { ModuleGroup } from "../server/src/merge/types.ts";

/** Options of the dense Algorithm 1 (same meaning as the engine's ALS). */
export interface DenseAlsOptions {
  readonly k: number;
  readonly rank: number;
  readonly sigma: number;
  readonly iters: number;
  readonly tol: number;
  readonly seed: number;
}

/** Runs Algorithm 1 densely; returns the best loss (Eq. 6, normalised weights) and iterations. */
export function denseAlgorithm1(
  group: ModuleGroup,
  o: DenseAlsOptions,
): { loss: number; iterations: number } {
  const { dOut, dIn } = group;
  const r = o.rank;
  const w = frobeniusWeights(
    group.clients.map((c) => clientNorm2(c, dOut, dIn)),
    o.k,
  );
  const thetas = group.clients.map((c) => f32(dOut, dIn, taskVector(c, dOut, dIn)));
  const thetasT = thetas.map((t) => transposeF32(t));
  const key = streamKey(o.seed, group.name, "als-init");
  let a: Float32Array = new Float32Array(r * dIn);
  for (let i = 0; i < a.length; i++) a[i] = o.sigma * normalAt(key, i);
  let minLoss = Number.POSITIVE_INFINITY;
  let iterations = 0;
  for (let it = 0; it < o.iters; it++) {
    iterations++;
    // Eq. 7: B = (Σ w_i Θ_i Aᵀ)(Σ w_i A Aᵀ)⁺
    const at = transposeF32(f32(r, dIn, a));
    const num = new Float64Array(dOut * r);
    thetas.forEach((t, i) => {
      const p = gemm(t, at).data;
      for (let j = 0; j < num.length; j++) num[j] += w[i] * p[j];
    });
    const inv = pinvSym(gramRows(a, r, dIn)); // Σ w_i = 1
    const b = new Float32Array(dOut * r);
    for (let row = 0; row < dOut; row++)
      for (let c = 0; c < r; c++) {
        let s = 0;
        for (let k = 0; k < r; k++) s += num[row * r + k] * inv.data[k * r + c];
        b[row * r + c] = s;
      }
    // Eq. 8: A = (Σ w_i BᵀB)⁺ (Σ w_i Bᵀ Θ_i)   (Bᵀ Θ_i = (Θ_iᵀ B)ᵀ)
    const bm = f32(dOut, r, b);
    const num2 = new Float64Array(dIn * r);
    thetasT.forEach((t, i) => {
      const p = gemm(t, bm).data;
      for (let j = 0; j < num2.length; j++) num2[j] += w[i] * p[j];
    });
    const inv2 = pinvSym(gramCols(b, dOut, r));
    a = new Float32Array(r * dIn);
    for (let i = 0; i < r; i++)
      for (let c = 0; c < dIn; c++) {
        let s = 0;
        for (let k = 0; k < r; k++) s += inv2.data[i * r + k] * num2[c * r + k];
        a[i * dIn + c] = s;
      }
    // Eq. 6: Σ w_i ‖BA − Θ_i‖², densely.
    const ba = gemm(bm, f32(r, dIn, a)).data;
    let loss = 0;
    thetas.forEach((t, i) => {
      let s = 0;
      for (let j = 0; j < ba.length; j++) {
        const d = ba[j] - t.data[j];
        s += d * d;
      }
      loss += w[i] * s;
    });
    const improved = loss < minLoss;
    const small = Number.isFinite(minLoss) && minLoss - loss <= o.tol * minLoss;
    if (improved) minLoss = loss;
    if (!improved || small) break;
  }
  return { loss: minLoss, iterations };
}
