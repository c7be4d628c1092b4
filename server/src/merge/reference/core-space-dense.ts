import { Matrix, SVD } from "ml-matrix";
import { streamKey, uniformAt } from "../random.ts";
import type { ModuleGroup } from "../types.ts";
import { denseTaskVectors, requireClients } from "./task-vectors.ts";
import { tiesEntry } from "./ties-dense.ts";

/** Options of {@link coreSpaceDense}. */
export interface CoreSpaceDenseOptions {
  readonly combine: "ties" | "dare-ties" | "mean" | "sum";
  /** Percent of each client's core entries kept by magnitude, in `(0, 100]`. */
  readonly topK: number;
  /** DARE's drop probability (`dare-ties`). */
  readonly dareP: number;
  readonly seed: number;
  /** Final multiplier α. */
  readonly alpha: number;
  /** Truncate the merged update to this rank (its best rank-`r` approximation); absent = keep it whole. */
  readonly rank?: number;
}

/** The first `k` left singular vectors of `m` (`m.rows × k`, `k = min(rows, columns)`). */
function leftBasis(m: Matrix): Matrix {
  const k = Math.min(m.rows, m.columns);
  return new SVD(m, { autoTranspose: true }).leftSingularVectors.subMatrix(0, m.rows - 1, 0, k - 1);
}

/**
 * Core Space merging (Panariello et al. 2025) on dense matrices, as the
 * Core Space code's `core` merge space does it: `U_B` and `V_A` from the
 * SVDs of the stacked `[s_i B_i]` and `[A_i]`, each client's core
 * `U_Bᵀ ΔW_i V_A` from its dense update, DARE on the cores for
 * `dare-ties`, TIES (each client's top-k of its core, elected sign of the
 * trimmed sum, disjoint mean), mean or sum, and `α · U_B M V_Aᵀ`,
 * truncated by SVD to `rank` when given.
 */
export function coreSpaceDense(module: ModuleGroup, opts: CoreSpaceDenseOptions): Matrix {
  requireClients(module);
  const { dOut, dIn } = module;
  const total = module.clients.reduce((s, c) => s + c.rank, 0);
  const bStack = new Matrix(dOut, total);
  const aStack = new Matrix(total, dIn);
  let at = 0;
  for (const c of module.clients) {
    for (let row = 0; row < dOut; row++)
      for (let j = 0; j < c.rank; j++) bStack.set(row, at + j, c.scaling * c.b[row * c.rank + j]);
    for (let j = 0; j < c.rank; j++) for (let q = 0; q < dIn; q++) aStack.set(at + j, q, c.a[j * dIn + q]);
    at += c.rank;
  }
  const ub = leftBasis(bStack);
  const va = leftBasis(aStack.transpose());
  const n = module.clients.length;
  const cores = denseTaskVectors(module).map((theta, i) => {
    const core = ub.transpose().mmul(theta).mmul(va);
    if (opts.combine !== "dare-ties") return core;
    const key = streamKey(opts.seed, module.name, "core-dare", i);
    for (let r = 0; r < core.rows; r++) {
      for (let c = 0; c < core.columns; c++) {
        const e = r * core.columns + c;
        core.set(r, c, uniformAt(key, e) >= opts.dareP ? core.get(r, c) / (1 - opts.dareP) : 0);
      }
    }
    return core;
  });
  const tau = cores.map((core) => {
    if (opts.topK >= 100 || opts.combine === "mean" || opts.combine === "sum") return 0;
    const sorted = core
      .to1DArray()
      .map(Math.abs)
      .sort((x, y) => y - x);
    return sorted[Math.min(Math.floor(sorted.length * (opts.topK / 100)), sorted.length - 1)];
  });
  const merged = new Matrix(cores[0].rows, cores[0].columns);
  for (let r = 0; r < merged.rows; r++) {
    for (let c = 0; c < merged.columns; c++) {
      const xs = cores.map((core) => core.get(r, c));
      if (opts.combine === "mean" || opts.combine === "sum") {
        const sum = xs.reduce((a, x) => a + x, 0);
        merged.set(r, c, opts.combine === "sum" ? sum : sum / n);
        continue;
      }
      merged.set(r, c, tiesEntry(xs, tau));
    }
  }
  const dense = ub.mmul(merged).mmul(va.transpose()).mul(opts.alpha);
  if (opts.rank === undefined || opts.rank >= Math.min(merged.rows, merged.columns)) return dense;
  const svd = new SVD(dense, { autoTranspose: true });
  const r = opts.rank;
  const ur = svd.leftSingularVectors.subMatrix(0, dense.rows - 1, 0, r - 1);
  const vr = svd.rightSingularVectors.subMatrix(0, dense.columns - 1, 0, r - 1);
  return ur.mmul(Matrix.diag(svd.diagonal.slice(0, r))).mmul(vr.transpose());
}
