/**
 * Gram matrices of stacked factors and every Frobenius quantity derived from
 * them, so that no `dOut × dIn` matrix is ever formed:
 * `⟨Θ_i, Θ_j⟩ = Σ_{a∈i, b∈j} (PᵀP)[a][b] · (QQᵀ)[a][b]`.
 */
import type { FactorStack } from "./factor-stack.ts";
import { type F32Mat, f32, gemmNT, gemmTN, transposeF32 } from "./kernels/device-matmul.ts";
import { denseGramNT, denseGramTN, fromFloat32, type Mat } from "./linalg/index.ts";
import type { ClientLora } from "./types.ts";

/** `G_p = PᵀP` and `G_q = QQᵀ` in float64 (`R × R`, products on tfjs). */
export interface StackGrams {
  readonly gp: Mat;
  readonly gq: Mat;
}

/** Computes both Gram matrices of a stack: `G_p = PᵀP`, `G_q = QQᵀ`. */
export function stackGrams(stack: FactorStack): StackGrams {
  const gp = gemmTN(stack.p, stack.p, () => stack.pT);
  const gq = gemmNT(stack.q, stack.q, () => stack.qT);
  return {
    gp: symmetrise(fromFloat32(gp.rows, gp.cols, gp.data)),
    gq: symmetrise(fromFloat32(gq.rows, gq.cols, gq.data)),
  };
}

function symmetrise(m: Mat): Mat {
  const n = m.rows;
  const d = m.data;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const v = 0.5 * (d[i * n + j] + d[j * n + i]);
      d[i * n + j] = v;
      d[j * n + i] = v;
    }
  }
  return m;
}

/**
 * Inner products between the stack's clients:
 * `K[i][j] = ⟨Θ_i, Θ_j⟩_F = tr(Θ_iᵀ Θ_j)` where `Θ_i` sums client i's terms.
 */
export function clientInnerProducts(stack: FactorStack, grams: StackGrams): Mat {
  const n = stack.clients;
  const R = stack.width;
  const out = new Float64Array(n * n);
  const gp = grams.gp.data;
  const gq = grams.gq.data;
  for (let a = 0; a < R; a++) {
    const ia = stack.owner[a];
    for (let b = 0; b < R; b++) {
      out[ia * n + stack.owner[b]] += gp[a * R + b] * gq[a * R + b];
    }
  }
  return { rows: n, cols: n, data: out };
}

/** `‖Σ_j c_j (b_j a_j)‖²_F` over stacked columns with per-column coefficients `c`: `cᵀ (G_p ∘ G_q) c`. */
export function combinationNorm2(grams: StackGrams, colCoef: Float64Array): number {
  const R = colCoef.length;
  const gp = grams.gp.data;
  const gq = grams.gq.data;
  let s = 0;
  for (let a = 0; a < R; a++) {
    const ca = colCoef[a];
    if (ca === 0) continue;
    let row = 0;
    for (let b = 0; b < R; b++) row += gp[a * R + b] * gq[a * R + b] * colCoef[b];
    s += ca * row;
  }
  return s;
}

/** Two float64 buffers this thread reuses to widen a client's factors for {@link factorGrams64}. */
const widenBuffers: Float64Array[] = [new Float64Array(0), new Float64Array(0)];
/** The largest factor (values) whose widening buffer is kept for the next call: 16 MB. */
const KEPT_WIDENING = 1 << 21;

/** `data` widened to float64, in reused buffer `slot` up to {@link KEPT_WIDENING} values (valid until the next call). */
function widened(data: Float32Array, slot: 0 | 1): Float64Array {
  if (data.length > KEPT_WIDENING) return new Float64Array(data);
  if (widenBuffers[slot].length < data.length) widenBuffers[slot] = new Float64Array(data.length);
  const out = widenBuffers[slot].subarray(0, data.length);
  out.set(data);
  return out;
}

/**
 * `‖Θ_i‖²_F = s_i² tr((BᵀB)(AAᵀ))` for one client, in float64 on the CPU from
 * its two `r × r` Gram matrices: `O((dIn + dOut) r²)`, on this thread's
 * float64 Grams (BLAS `dsyrk` where LAPACK loaded, else `matmulTN` / `matmulNT`).
 */
export function clientNorm2(c: ClientLora, dOut: number, dIn: number): number {
  const { btb, aat } = factorGrams64(c, dOut, dIn);
  return c.scaling * c.scaling * gramTrace(btb, aat);
}

/**
 * A client's two `r × r` Grams `BᵀB` and `AAᵀ` in float64, whole and
 * symmetric, on this thread's float64 Grams. Their diagonals hold the
 * column sums of squares of B and the row sums of squares of A: every
 * factor value is in one of them, so a NaN or ±Inf value shows there.
 */
export function factorGrams64(
  c: Pick<ClientLora, "a" | "b" | "rank">,
  dOut: number,
  dIn: number,
): { readonly btb: Float64Array; readonly aat: Float64Array } {
  const r = c.rank;
  // Straight from the factors (no transposed copy), widened into this
  // thread's reused buffers: a fresh float64 copy of each factor cost more
  // than both Grams.
  const btb = denseGramTN({ rows: dOut, cols: r, data: widened(c.b, 0) }).data;
  const aat = denseGramNT({ rows: r, cols: dIn, data: widened(c.a, 1) }).data;
  return { btb, aat };
}

/** `tr(XY) = Σ X∘Y` of two symmetric matrices of the same size: `‖BA‖²_F` from {@link factorGrams64}. */
export function gramTrace(btb: Float64Array, aat: Float64Array): number {
  let tr = 0;
  for (let i = 0; i < btb.length; i++) tr += btb[i] * aat[i];
  return tr;
}

/**
 * `‖B A‖²_F = tr((BᵀB)(AAᵀ))` with both `r × r` Grams as float32 products on
 * this thread's device: about 1e-6 relative, as the stack Grams' diagonal
 * blocks give it on the Gram routes. The merge's weights, objectives and the
 * stream route's `‖M‖²` bound take it; the intake's norm policy and clipping
 * take the float64 {@link clientNorm2}.
 */
export function factorNorm2F32(b: F32Mat, a: F32Mat): number {
  const btb = gemmTN(b, b, () => transposeF32(b)).data;
  const aat = gemmNT(a, a, () => transposeF32(a)).data;
  let tr = 0;
  for (let i = 0; i < btb.length; i++) tr += btb[i] * aat[i];
  return tr;
}

/** `‖Θ_i‖²_F = s² ‖B A‖²_F` of one client by {@link factorNorm2F32}: as the Grams' diagonal blocks give it. */
export function clientNorm2F32(c: ClientLora, dOut: number, dIn: number): number {
  return c.scaling * c.scaling * factorNorm2F32(f32(dOut, c.rank, c.b), f32(c.rank, dIn, c.a));
}

/** `‖Θ_i‖²_F` of every client from the Grams' diagonal blocks (free once the Grams exist). */
export function clientNorms2FromGrams(stack: FactorStack, grams: StackGrams): number[] {
  const out = new Array<number>(stack.clients).fill(0);
  const R = stack.width;
  const gp = grams.gp.data;
  const gq = grams.gq.data;
  let start = 0;
  while (start < R) {
    const owner = stack.owner[start];
    let end = start;
    while (end < R && stack.owner[end] === owner) end++;
    let s = 0;
    for (let a = start; a < end; a++) for (let b = start; b < end; b++) s += gp[a * R + b] * gq[a * R + b];
    out[owner] += s;
    start = end;
  }
  return out;
}
