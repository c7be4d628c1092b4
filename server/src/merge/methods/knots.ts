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
import { diagScaleCols, type Mat, mat, matmul, matmulTN, svd, transpose } from "../linalg/index.ts";
import type { MergeMethod } from "../method.ts";
import { boundNorms } from "../norm-bound.ts";
import type { MergeOptions } from "../params.ts";
import type { ModuleGroup, ModuleMergeResult } from "../types.ts";
import { alignedResult, combineBlocks, dareBlock, topKThreshold } from "./aligned-combine.ts";

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

/** Each client's blocks after DARE where `dare-ties` asks for it. */
export function knotsPrepared(
  basis: KnotsBasis,
  opts: MergeOptions,
  module: string,
): readonly Float64Array[] {
  return opts.knotsCombine === "dare-ties"
    ? basis.blocks.map((b, i) =>
        dareBlock(b, opts.dareP, { seed: opts.seed, module, stream: "knots-dare", client: i }),
      )
    : basis.blocks;
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
      return topKThreshold(all, this.opts.topK);
    });
  }
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
      : (opts.knotsThresholds ?? blocks.map((b) => topKThreshold(b, opts.topK)));
  const merged = combineBlocks(blocks, tau);
  return alignedResult(
    group.name,
    { left: basis.u, core: { rows: basis.rank, cols: group.dIn, data: merged } },
    opts,
    group.clients.map(() => 1 / n),
    "knots",
  );
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
