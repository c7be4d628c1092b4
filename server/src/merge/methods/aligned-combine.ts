/**
 * Combining the clients' blocks once they are aligned in a shared basis
 * (KnOTS's `Uᵀ ΔW_i`, Core Space's cores): DARE on a block, a client's
 * top-k magnitude threshold, and the entrywise TIES or mean, as the KnOTS
 * and Core Space code do them.
 */
import { kthLargestAbs } from "../kernels/select.ts";
import { diagScaleCols, type Mat, mat, matmul, svd, transpose } from "../linalg/index.ts";
import type { MergeOptions } from "../params.ts";
import { streamKey, uniformAt } from "../random.ts";
import type { ModuleMergeResult } from "../types.ts";

/**
 * DARE on one client's block: each entry dropped with probability `p`
 * (seeded by the seed, module, stream name and client), survivors ×
 * `1/(1 − p)`.
 */
export function dareBlock(
  block: Float64Array,
  p: number,
  key: { readonly seed: number; readonly module: string; readonly stream: string; readonly client: number },
): Float64Array {
  const k = streamKey(key.seed, key.module, key.stream, key.client);
  const out = new Float64Array(block.length);
  const keep = 1 / (1 - p);
  for (let j = 0; j < block.length; j++) if (uniformAt(k, j) >= p) out[j] = block[j] * keep;
  return out;
}

/**
 * A client's top-k magnitude threshold over `values` (its blocks, one module
 * or the whole adapter), as the KnOTS and Core Space code's `topk_values_mask`: with `d`
 * entries and `K = topK / 100`, the `(d − ⌊d·K⌋)`-th smallest `|x|`, i.e. the
 * `(⌊d·K⌋ + 1)`-th largest; entries with `|x|` at or above it are kept.
 * `topK = 100` keeps everything (threshold 0).
 */
export function topKThreshold(values: Float64Array, topK: number): number {
  if (topK >= 100 || values.length === 0) return 0;
  const keep = Math.floor(values.length * (topK / 100)) + 1;
  return kthLargestAbs(values, Math.min(keep, values.length));
}

/**
 * Combines the clients' (prepared) blocks entry by entry: the plain mean, or
 * TIES with per-client thresholds `tau` — entries below a client's threshold
 * dropped, the sign of each entry's sum elected, the disjoint mean of the
 * kept entries of that sign (0 where there are none).
 */
export function combineBlocks(
  blocks: readonly Float64Array[],
  tau: readonly number[] | undefined,
): Float64Array {
  const size = blocks[0]?.length ?? 0;
  const out = new Float64Array(size);
  const n = blocks.length;
  if (tau === undefined) {
    for (const b of blocks) for (let j = 0; j < size; j++) out[j] += b[j];
    for (let j = 0; j < size; j++) out[j] /= n;
    return out;
  }
  for (let j = 0; j < size; j++) {
    let sum = 0;
    for (let i = 0; i < n; i++) {
      const x = blocks[i][j];
      if (Math.abs(x) >= tau[i]) sum += x;
    }
    const sign = Math.sign(sum);
    if (sign === 0) continue;
    let acc = 0;
    let count = 0;
    for (let i = 0; i < n; i++) {
      const x = blocks[i][j];
      if (x !== 0 && Math.abs(x) >= tau[i] && Math.sign(x) === sign) {
        acc += x;
        count++;
      }
    }
    if (count > 0) out[j] = acc / count;
  }
  return out;
}

/** The first `k` columns of `m`. */
export function leadingColumns(m: Mat, k: number): Mat {
  const out = mat(m.rows, k);
  for (let r = 0; r < m.rows; r++) for (let c = 0; c < k; c++) out.data[r * k + c] = m.data[r * m.cols + c];
  return out;
}

/**
 * The merged module `α · L · M · Rᵀ` (`L`, `R` with orthonormal columns; no
 * `R` = `M` is already `p × dIn`), at `opts.rank` when that is below
 * `M`'s full rank: `L M Rᵀ = (L U_m) diag(σ) (R V_m)ᵀ`, so truncating the
 * SVD of the small `M` truncates the update exactly; the residual is the
 * dropped `α² Σ σ²`.
 */
export function alignedResult(
  name: string,
  parts: { readonly left: Mat; readonly core: Mat; readonly right?: Mat },
  opts: MergeOptions,
  weights: number[],
  solver: string,
): ModuleMergeResult {
  const { left, core, right } = parts;
  const full = Math.min(core.rows, core.cols);
  const r = typeof opts.rank === "number" ? Math.min(opts.rank, full) : full;
  let b: Mat;
  let a: Mat;
  let residual = 0;
  if (right === undefined && r === core.rows) {
    b = left;
    a = core;
  } else {
    const sm = svd(core);
    b = matmul(left, diagScaleCols(leadingColumns(sm.u, r), sm.s.subarray(0, r)));
    const v = leadingColumns(sm.v, r);
    a = transpose(right === undefined ? v : matmul(right, v));
    for (let j = r; j < sm.s.length; j++) residual += sm.s[j] * sm.s[j];
  }
  const alpha = opts.scale;
  const af = new Float32Array(a.data.length);
  for (let j = 0; j < af.length; j++) af[j] = alpha * a.data[j];
  return {
    name,
    merged: { a: af, b: Float32Array.from(b.data), rank: r },
    report: { weights, objective: null, residual: alpha * alpha * residual, iterations: 0, solver },
  };
}
