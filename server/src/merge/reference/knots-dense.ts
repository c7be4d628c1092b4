import { Matrix, SVD } from "ml-matrix";
import { streamKey, uniformAt } from "../random.ts";
import type { ModuleGroup } from "../types.ts";
import { denseTaskVectors, requireClients } from "./task-vectors.ts";
import { tiesEntry } from "./ties-dense.ts";

/** Options of {@link knotsDense}. */
export interface KnotsDenseOptions {
  readonly combine: "ties" | "dare-ties" | "mean";
  /** Percent of each client's entries kept by magnitude, in `(0, 100]`. */
  readonly topK: number;
  /** Whether a client's threshold is over all the modules given (`adapter`) or each module's own. */
  readonly scope: "adapter" | "module";
  /** DARE's drop probability (`dare-ties`). */
  readonly dareP: number;
  readonly seed: number;
  /** Final multiplier α. */
  readonly alpha: number;
  /** Truncate each merged update to this rank (its best rank-`r` approximation); absent = keep it whole. */
  readonly rank?: number;
  /** Directions with `s ≤ tol · s_max` are dropped; the engine's `KNOTS_RELATIVE_TOL`. */
  readonly tol: number;
}

/** One module's SVD of the concatenated updates, and each client's `diag(s) V_iᵀ`. */
function moduleBlocks(module: ModuleGroup, opts: KnotsDenseOptions): { u: Matrix; blocks: Matrix[] } {
  requireClients(module);
  const { dIn } = module;
  const thetas = denseTaskVectors(module);
  const n = thetas.length;
  const w = new Matrix(module.dOut, n * dIn);
  thetas.forEach((t, i) => {
    w.setSubMatrix(t, 0, i * dIn);
  });
  const svd = new SVD(w, { autoTranspose: true });
  const s = svd.diagonal;
  const keep = s.filter((x) => x > opts.tol * s[0]).length;
  const u = svd.leftSingularVectors.subMatrix(0, module.dOut - 1, 0, keep - 1);
  const v = svd.rightSingularVectors;
  const blocks = thetas.map((_, i) => {
    const b = new Matrix(keep, dIn);
    for (let k = 0; k < keep; k++) for (let j = 0; j < dIn; j++) b.set(k, j, s[k] * v.get(i * dIn + j, k));
    if (opts.combine !== "dare-ties") return b;
    // DARE on the block (Yu et al.): entry k·dIn + j kept iff its uniform is ≥ p, survivors / (1 − p).
    const key = streamKey(opts.seed, module.name, "knots-dare", i);
    for (let k = 0; k < keep; k++) {
      for (let j = 0; j < dIn; j++) {
        b.set(k, j, uniformAt(key, k * dIn + j) >= opts.dareP ? b.get(k, j) / (1 - opts.dareP) : 0);
      }
    }
    return b;
  });
  return { u, blocks };
}

/** KnOTS's `topk_values_mask` threshold over `values`: the `(⌊d·K⌋ + 1)`-th largest `|x|`, 0 at `topK = 100`. */
function threshold(values: number[], topK: number): number {
  if (topK >= 100) return 0;
  const sorted = values.map(Math.abs).sort((x, y) => y - x);
  return sorted[Math.min(Math.floor(values.length * (topK / 100)), values.length - 1)];
}

/**
 * KnOTS (Stoica et al. 2025) on dense matrices, straight from the KnOTS
 * code's procedure: per module the SVD of `[ΔW_1 | … | ΔW_n]`, each
 * client's block `diag(s) V_iᵀ`, DARE on the blocks for `dare-ties`, each
 * client's top-k threshold over its blocks (of all `modules` for `adapter`),
 * TIES (elected sign of the trimmed sum, disjoint mean) or the plain mean,
 * `α · U · merged`, truncated by SVD to `rank` when given. Returns each
 * module's dense merged update.
 */
export function knotsDense(modules: readonly ModuleGroup[], opts: KnotsDenseOptions): Matrix[] {
  const per = modules.map((m) => moduleBlocks(m, opts));
  const n = per[0]?.blocks.length ?? 0;
  const thresholds = (blocks: Matrix[][]): number[] =>
    Array.from({ length: n }, (_, i) =>
      threshold(
        blocks.flatMap((bs) => bs[i].to1DArray()),
        opts.topK,
      ),
    );
  const adapterTau = opts.scope === "adapter" ? thresholds(per.map((p) => p.blocks)) : undefined;
  return per.map(({ u, blocks }) => {
    const tau = adapterTau ?? thresholds([blocks]);
    const merged = new Matrix(blocks[0].rows, blocks[0].columns);
    for (let k = 0; k < merged.rows; k++) {
      for (let j = 0; j < merged.columns; j++) {
        const xs = blocks.map((b) => b.get(k, j));
        if (opts.combine === "mean") {
          merged.set(k, j, xs.reduce((a, x) => a + x, 0) / n);
          continue;
        }
        merged.set(k, j, tiesEntry(xs, tau));
      }
    }
    const dense = u.mmul(merged).mul(opts.alpha);
    if (opts.rank === undefined || opts.rank >= merged.rows) return dense;
    const svd = new SVD(dense, { autoTranspose: true });
    const r = opts.rank;
    const ur = svd.leftSingularVectors.subMatrix(0, dense.rows - 1, 0, r - 1);
    const vr = svd.rightSingularVectors.subMatrix(0, dense.columns - 1, 0, r - 1);
    return ur.mmul(Matrix.diag(svd.diagonal.slice(0, r))).mmul(vr.transpose());
  });
}
