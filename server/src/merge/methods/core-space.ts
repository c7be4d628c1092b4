/**
 * Core Space merging (Panariello et al., "Accurate and Efficient Low-Rank
 * Model Merging in Core Space", NeurIPS 2025): bases from the SVDs of the
 * stacked factors — `U_B` of `[s_1 B_1 … s_n B_n]` (`dOut × Σ r_i`) and
 * `V_A` of `[A_1; …; A_n]` (`Σ r_i × dIn`) — hold every client's update
 * exactly, so each client is its core `M_i = U_Bᵀ s_i B_i A_i V_A`
 * (`R × R`, `R ≤ Σ r_i`), computed as `(U_Bᵀ s_i B_i)(A_i V_A)`. The cores
 * are combined entry by entry (TIES with each client's top-k per module,
 * DARE then TIES, the mean or the sum, as the Core Space code does), scaled
 * by α and reconstructed as `U_B · M · V_Aᵀ`: rank ≤ `R`, `--rank r`
 * truncates exactly through the SVD of `M`. Nothing of size `dOut × dIn`
 * is formed; the mean is exactly the mean of the updates.
 */
import { type Mat, mat, matmul, matmulTN, svd } from "../linalg/index.ts";
import type { MergeMethod } from "../method.ts";
import type { MergeOptions } from "../params.ts";
import type { ModuleGroup, ModuleMergeResult } from "../types.ts";
import { alignedResult, combineBlocks, dareBlock, topKThreshold } from "./aligned-combine.ts";

/** A module's core bases and each client's core. */
export interface CoreSpace {
  /** `U_B`, `dOut × R_B`, orthonormal columns. */
  readonly ub: Mat;
  /** `V_A`, `dIn × R_A`, orthonormal columns. */
  readonly va: Mat;
  /** Client `i`'s core `U_Bᵀ s_i B_i A_i V_A`, row-major `R_B × R_A`. */
  readonly cores: readonly Float64Array[];
}

/** The core bases of a module and its clients' cores, from their factors. */
export function coreSpace(group: ModuleGroup): CoreSpace {
  const { dOut, dIn, clients } = group;
  const total = clients.reduce((s, c) => s + c.rank, 0);
  const bStack = mat(dOut, total);
  const aStack = mat(total, dIn);
  let at = 0;
  for (const c of clients) {
    for (let row = 0; row < dOut; row++) {
      for (let j = 0; j < c.rank; j++) bStack.data[row * total + at + j] = c.scaling * c.b[row * c.rank + j];
    }
    aStack.data.set(c.a, at * dIn);
    at += c.rank;
  }
  const ub = svd(bStack).u;
  const va = svd(aStack).v;
  at = 0;
  const cores = clients.map((c) => {
    const bi: Mat = mat(dOut, c.rank);
    const ai: Mat = mat(c.rank, dIn);
    for (let row = 0; row < dOut; row++) {
      for (let j = 0; j < c.rank; j++) bi.data[row * c.rank + j] = bStack.data[row * total + at + j];
    }
    ai.data.set(aStack.data.subarray(at * dIn, (at + c.rank) * dIn));
    at += c.rank;
    return matmul(matmulTN(ub, bi), matmul(ai, va)).data;
  });
  return { ub, va, cores };
}

/** Merges one module in Core Space (α = `scale`). */
export function mergeCoreSpace(group: ModuleGroup, opts: MergeOptions): ModuleMergeResult {
  const n = group.clients.length;
  const space = coreSpace(group);
  const cores =
    opts.coreCombine === "dare-ties"
      ? space.cores.map((c, i) =>
          dareBlock(c, opts.dareP, { seed: opts.seed, module: group.name, stream: "core-dare", client: i }),
        )
      : space.cores;
  const tau =
    opts.coreCombine === "ties" || opts.coreCombine === "dare-ties"
      ? cores.map((c) => topKThreshold(c, opts.topK))
      : undefined;
  const merged = combineBlocks(cores, tau);
  if (opts.coreCombine === "sum") for (let j = 0; j < merged.length; j++) merged[j] *= n;
  return alignedResult(
    group.name,
    { left: space.ub, core: { rows: space.ub.cols, cols: space.va.cols, data: merged }, right: space.va },
    opts,
    group.clients.map(() => (opts.coreCombine === "sum" ? 1 : 1 / n)),
    "core-space",
  );
}

/** Core Space merging, as the registry lists it. */
export const coreSpaceMethod: MergeMethod = {
  name: "core-space",
  title: "Core Space",
  summary:
    "the clients' cores in the bases of the stacked B and A factors, combined by TIES, DARE-TIES, a mean or a sum (rank ≤ Σ r_i)",
  params: ["coreCombine", "topK", "dareP"],
  defaults: { topK: 10 }, // the Core Space code's TIES default
  denseWeights: "uniform",
  usesSamples: false,
  merge: mergeCoreSpace,
  reference: "core-space-dense",
};
