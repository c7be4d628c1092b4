/**
 * KnOTS (Stoica et al., "Model Merging with SVD to Tie the KnOTS", ICLR
 * 2025): the SVD of the column-concatenated updates `[ΔW_1 | … | ΔW_n] =
 * U diag(s) Vᵀ` gives a basis `U` the clients share; client `i`'s block is
 * `diag(s) V_iᵀ = Uᵀ ΔW_i` (`K × dIn`, `K ≤ Σ r_i`). The blocks are
 * combined entry by entry — TIES (each client's top-k % by magnitude,
 * elected sign, disjoint mean), DARE then TIES, or a plain mean — scaled by
 * α and reconstructed as `U · merged`, at rank `K` (`--rank r` truncates it
 * exactly).
 *
 * Factored, never forming `ΔW_i`: with `P = [s_1 B_1 … s_n B_n] = Q R_P`
 * (thin SVD of `P`, `dOut × Σ r_i`) and `A_i A_iᵀ = L_i L_iᵀ`, the update
 * matrix is `Q · R_P blockdiag(L_i) · Z` with `Z` of orthonormal rows, so
 * `U = Q V_M` for the SVD `R_P blockdiag(L_i) = V_M S W_Mᵀ` (`Σ r_i` square),
 * and `Uᵀ ΔW_i = (V_Mᵀ R_P[:, i]) A_i`. Directions with
 * `s ≤ KNOTS_RELATIVE_TOL · s_max` are dropped (the KnOTS code drops
 * `s ≤ 1e-5`, an absolute cut that LoRA updates of small norm would fall
 * under).
 *
 * The blocks are dense (`K × dIn` per client, `K` growing with the number of
 * clients): memory is `n · K · dIn` float64 per module, as in the KnOTS code,
 * which merges a handful of task adapters.
 */
import { MergeInputError } from "../errors.ts";
import { kthLargestAbs } from "../kernels/select.ts";
import { diagScaleCols, type Mat, mat, matmul, matmulTN, svd, transpose } from "../linalg/index.ts";
import type { MergeMethod } from "../method.ts";
import { boundNorms } from "../norm-bound.ts";
import type { MergeOptions } from "../params.ts";
import { streamKey, uniformAt } from "../random.ts";
import type { ModuleGroup, ModuleMergeResult } from "../types.ts";

/** Singular directions at or below this fraction of the largest are dropped from the shared basis. */
export const KNOTS_RELATIVE_TOL = 1e-9;

/** A module's shared basis and each client's block in it. */
export interface KnotsBasis {
  /** `U`, `dOut × K`, orthonormal columns. */
  readonly u: Mat;
  /** Client `i`'s block `Uᵀ ΔW_i = diag(s) V_iᵀ`, row-major `K × dIn`. */
  readonly blocks: readonly Float64Array[];
  /** `K`: the directions kept. */
  readonly rank: number;
}

/** The block of rows `[start, start + cols)` of `m`'s columns as its own matrix (`m.rows × cols`). */
function columns(m: Mat, start: number, cols: number): Mat {
  const out = mat(m.rows, cols);
  for (let r = 0; r < m.rows; r++) {
    for (let c = 0; c < cols; c++) out.data[r * cols + c] = m.data[r * m.cols + start + c];
  }
  return out;
}

/** Computes a module's shared basis and the clients' blocks from their factors (see the module comment). */
export function knotsBasis(group: ModuleGroup): KnotsBasis {
  const { dOut, dIn, clients } = group;
  const total = clients.reduce((s, c) => s + c.rank, 0);
  // P = [s_1 B_1 … s_n B_n].
  const p = mat(dOut, total);
  let at = 0;
  for (const c of clients) {
    for (let row = 0; row < dOut; row++) {
      for (let j = 0; j < c.rank; j++) p.data[row * total + at + j] = c.scaling * c.b[row * c.rank + j];
    }
    at += c.rank;
  }
  const sp = svd(p);
  const rp = transpose(diagScaleCols(sp.v, sp.s)); // R_P = diag(s) Vᵀ, k_P × Σ r_i
  // M = R_P blockdiag(L_i), L_i = V_i diag(σ_i) from the thin SVD Aᵢᵀ = U_i diag(σ_i) V_iᵀ.
  const m = mat(rp.rows, total);
  at = 0;
  const rpBlocks: Mat[] = [];
  for (const c of clients) {
    const aT = transpose({ rows: c.rank, cols: dIn, data: Float64Array.from(c.a) });
    const sa = svd(aT);
    const rpi = columns(rp, at, c.rank);
    rpBlocks.push(rpi);
    const mi = matmul(rpi, diagScaleCols(sa.v, sa.s));
    for (let r = 0; r < m.rows; r++) {
      for (let j = 0; j < mi.cols; j++) m.data[r * total + at + j] = mi.data[r * mi.cols + j];
    }
    at += c.rank;
  }
  const sm = svd(m);
  const smax = sm.s.length > 0 ? sm.s[0] : 0;
  let k = 0;
  while (k < sm.s.length && sm.s[k] > KNOTS_RELATIVE_TOL * smax) k++;
  const vm = columns(sm.u, 0, k); // k_P × K
  const u = matmul(sp.u, vm);
  const blocks = clients.map((c, i) => {
    const ci = matmulTN(vm, rpBlocks[i]); // K × r_i
    return matmul(ci, { rows: c.rank, cols: dIn, data: Float64Array.from(c.a) }).data;
  });
  return { u, blocks, rank: k };
}

/** DARE on client `i`'s block of `module`: each entry dropped with probability `p` (seeded), survivors × `1/(1 − p)`. */
export function knotsDare(
  block: Float64Array,
  p: number,
  seed: number,
  module: string,
  i: number,
): Float64Array {
  const key = streamKey(seed, module, "knots-dare", i);
  const out = new Float64Array(block.length);
  const keep = 1 / (1 - p);
  for (let j = 0; j < block.length; j++) if (uniformAt(key, j) >= p) out[j] = block[j] * keep;
  return out;
}

/**
 * A client's top-k magnitude threshold over `values` (its blocks, one module
 * or the whole adapter), as the KnOTS code's `topk_values_mask`: with `d`
 * entries and `K = topK / 100`, the `(d − ⌊d·K⌋)`-th smallest `|x|`, i.e. the
 * `(⌊d·K⌋ + 1)`-th largest; entries with `|x|` at or above it are kept.
 * `topK = 100` keeps everything (threshold 0).
 */
export function knotsThreshold(values: Float64Array, topK: number): number {
  if (topK >= 100 || values.length === 0) return 0;
  const keep = Math.floor(values.length * (topK / 100)) + 1;
  return kthLargestAbs(values, Math.min(keep, values.length));
}

/** Each client's blocks after DARE where `dare-ties` asks for it. */
export function knotsPrepared(
  basis: KnotsBasis,
  opts: MergeOptions,
  module: string,
): readonly Float64Array[] {
  return opts.knotsCombine === "dare-ties"
    ? basis.blocks.map((b, i) => knotsDare(b, opts.dareP, opts.seed, module, i))
    : basis.blocks;
}

/**
 * Combines the clients' (prepared) blocks entry by entry: the plain mean, or
 * TIES with per-client thresholds `tau` — entries below a client's threshold
 * dropped, the sign of each entry's sum elected, the disjoint mean of the
 * kept entries of that sign (0 where there are none).
 */
export function knotsCombine(
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

/**
 * Each client's top-k threshold over its whole adapter, as `--knots-scope
 * adapter` (and the KnOTS code) has it: `add` every module of the adapters
 * once (their blocks, after DARE where asked, are kept as float64 until
 * `thresholds`), then pass the result as `knotsThresholds`.
 */
export class KnotsThresholds {
  private readonly values: Float64Array[][];

  /** For `clients` adapters merged with `opts`. */
  constructor(
    clients: number,
    private readonly opts: MergeOptions,
  ) {
    this.values = Array.from({ length: clients }, () => []);
  }

  /**
   * Adds one module's blocks (its clients in the adapters' order), after the
   * merge's norm bounds as `mergeModule` applies them (a rejected client
   * adds nothing of that module).
   */
  add(group: ModuleGroup): void {
    if (group.clients.length !== this.values.length) {
      throw new RangeError(`${group.name}: ${group.clients.length} clients, expected ${this.values.length}`);
    }
    const { group: bounded, kept } = boundNorms(group, this.opts);
    if (kept.length === 0) return;
    const blocks = knotsPrepared(knotsBasis(bounded), this.opts, group.name);
    blocks.forEach((b, j) => {
      this.values[kept[j]].push(b);
    });
  }

  /** Each client's threshold over every module added. */
  thresholds(): number[] {
    return this.values.map((parts) => {
      const all = new Float64Array(parts.reduce((s, p) => s + p.length, 0));
      let at = 0;
      for (const p of parts) {
        all.set(p, at);
        at += p.length;
      }
      return knotsThreshold(all, this.opts.topK);
    });
  }
}

/** The output rank of a KnOTS merge with `K` directions: `K`, or `--rank r` when smaller. */
function knotsRank(k: number, opts: MergeOptions): number {
  return typeof opts.rank === "number" ? Math.min(opts.rank, k) : k;
}

/** Merges one module with KnOTS (α = `scale`). */
export function mergeKnots(group: ModuleGroup, opts: MergeOptions): ModuleMergeResult {
  const n = group.clients.length;
  if (opts.knotsScope === "adapter" && opts.knotsCombine !== "mean" && opts.knotsThresholds === undefined) {
    throw new MergeInputError(
      `knots with --knots-scope adapter needs each client's threshold over its whole adapter (pipeline/knots-thresholds.ts); merge the whole adapter, or use --knots-scope module`,
      group.name,
    );
  }
  const basis = knotsBasis(group);
  const blocks = knotsPrepared(basis, opts, group.name);
  const tau =
    opts.knotsCombine === "mean"
      ? undefined
      : (opts.knotsThresholds ?? blocks.map((b) => knotsThreshold(b, opts.topK)));
  const merged = knotsCombine(blocks, tau);
  const K = basis.rank;
  const dIn = group.dIn;
  const r = knotsRank(K, opts);
  let b: Mat;
  let a: Mat;
  let residual = 0;
  if (r === K) {
    b = basis.u;
    a = { rows: K, cols: dIn, data: merged };
  } else {
    // U · merged = (U U_m) diag(σ) V_mᵀ: U orthonormal, so truncating merged's SVD is exact.
    const sm = svd({ rows: K, cols: dIn, data: merged });
    b = matmul(basis.u, diagScaleCols(columns(sm.u, 0, r), sm.s.subarray(0, r)));
    a = transpose(columns(sm.v, 0, r));
    for (let j = r; j < sm.s.length; j++) residual += sm.s[j] * sm.s[j];
  }
  const alpha = opts.scale;
  const af = new Float32Array(a.data.length);
  for (let j = 0; j < af.length; j++) af[j] = alpha * a.data[j];
  return {
    name: group.name,
    merged: { a: af, b: Float32Array.from(b.data), rank: r },
    report: {
      weights: group.clients.map(() => 1 / n),
      objective: null,
      residual: alpha * alpha * residual,
      iterations: 0,
      solver: "knots",
    },
  };
}

/** KnOTS, as the registry lists it. */
export const knotsMethod: MergeMethod = {
  name: "knots",
  title: "KnOTS",
  summary:
    "SVD of the concatenated updates, each client's block in the shared basis combined by TIES, DARE-TIES or a mean (rank ≤ Σ r_i)",
  params: ["knotsCombine", "topK", "knotsScope", "dareP"],
  denseWeights: "uniform",
  usesSamples: false,
  merge: mergeKnots,
  reference: "knots-dense",
};
