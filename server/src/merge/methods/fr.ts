/**
 * FR-Merging (FREE-Merging's frequency-domain part): high-pass filter each
 * task vector in the 2-D Fourier domain (see `frequency-bands.ts` for the
 * exact filter), then combine with `mean`, `sum` or FroM weights, scaled.
 * Factored: client `i` becomes two terms, `(s_i B_i, A_i)` and
 * `(−Π_r s_i B_i, A_i Π_c)`.
 */
import { clientTerms, type FactorTerm, stackTerms } from "../factor-stack.ts";
import { type LowBand, lowBand } from "../frequency-bands.ts";
import { clientNorm2 } from "../grams.ts";
import { type F32Mat, f32, gemm } from "../kernels/device-matmul.ts";
import type { MergeMethod } from "../method.ts";
import type { MergeOptions } from "../params.ts";
import type { ModuleGroup, ModuleMergeResult } from "../types.ts";
import { frobeniusWeights, linearMerge, weightedNorm2 } from "./common.ts";

/** Merges one module with FR-Merging. */
export function mergeFr(group: ModuleGroup, opts: MergeOptions): ModuleMergeResult {
  const { dOut, dIn } = group;
  const n = group.clients.length;
  const rowBand = lowBand(dOut, opts.cutoff);
  const colBand = lowBand(dIn, opts.cutoff);
  const base = clientTerms(group);
  const terms: FactorTerm[] = [];
  const norms2: number[] = [];
  for (const t of base) {
    terms.push(t);
    let n2 = clientNorm2({ a: t.a, b: t.b, rank: t.rank, scaling: 1 }, dOut, dIn);
    if (rowBand !== null && colBand !== null) {
      const low = {
        b: project(rowBand, f32(dOut, t.rank, t.b)),
        a: projectRows(colBand, f32(t.rank, dIn, t.a)),
      };
      const neg = new Float32Array(low.b.length);
      for (let j = 0; j < neg.length; j++) neg[j] = -low.b[j];
      terms.push({ client: t.client, rank: t.rank, b: neg, a: low.a });
      // ‖Θ − Π_r Θ Π_c‖² = ‖Θ‖² − ‖Π_r Θ Π_c‖² (an orthogonal projection of matrix space)
      n2 -= clientNorm2({ a: low.a, b: low.b, rank: t.rank, scaling: 1 }, dOut, dIn);
    }
    norms2.push(Math.max(0, n2));
  }
  const stack = stackTerms(group.name, dOut, dIn, n, terms);
  if (opts.combine === "sum") {
    return linearMerge(group, stack, new Array(n).fill(1), opts, new Array(n).fill(1));
  }
  const w = opts.combine === "from" ? frobeniusWeights(norms2, opts.k) : new Array(n).fill(1 / n);
  return linearMerge(group, stack, w, opts, w, weightedNorm2(w, norms2));
}

/** `Π X = E (Eᵀ X)` for `X` (`m × r`). */
function project(band: LowBand, x: F32Mat): Float32Array {
  return gemm(band.e, gemm(band.eT, x)).data;
}

/** `X Π = (X E) Eᵀ` for `X` (`r × m`). */
function projectRows(band: LowBand, x: F32Mat): Float32Array {
  return gemm(gemm(x, band.e), band.eT).data;
}

/** FR-Merging, as the registry lists it. */
export const frMethod: MergeMethod = {
  name: "fr",
  title: "FR",
  summary: "the lowest frequencies of each task vector removed (FREE-Merging), then combined",
  params: ["cutoff", "combine", "k"],
  denseWeights: "uniform",
  usesSamples: false,
  merge: mergeFr,
  reference: "fr-dense",
};
