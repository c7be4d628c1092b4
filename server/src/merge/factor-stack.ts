/**
 * Stacked LoRA factors of one module: `P = [b_1 | … | b_m]` (`dOut × R`) and
 * `Q = [a_1; …; a_m]` (`R × dIn`) over "terms" `(b_t, a_t)` whose products
 * sum to the clients' task vectors. Usually one term per client
 * (`b = s_i B_i`, `a = A_i`); FR-Merging's filtered updates are two terms per
 * client. Coefficients are applied later, per column, so one stack (and one
 * pair of Gram matrices) serves every weighting.
 */
import type { F32Mat } from "./kernels/device-matmul.ts";
import { f32, transposeF32 } from "./kernels/device-matmul.ts";
import type { ModuleGroup } from "./types.ts";

/** One rank-`rank` term `b · a` belonging to client `client`. */
export interface FactorTerm {
  readonly client: number;
  readonly rank: number;
  /** `dOut × rank`; the term's task vector is `scale · b · a`. */
  readonly b: Float32Array;
  /** Multiplier applied to `b` while stacking (default 1). */
  readonly scale?: number;
  /** `rank × dIn`. */
  readonly a: Float32Array;
}

/** The stacked factors, in both layouts the products need. */
export interface FactorStack {
  readonly name: string;
  readonly dIn: number;
  readonly dOut: number;
  /** Total stacked rank `R = Σ rank_t`. */
  readonly width: number;
  readonly clients: number;
  /** Client owning each stacked column of `P` / row of `Q`. */
  readonly owner: Int32Array;
  /** `P`, `dOut × R` (built on first access). */
  readonly p: F32Mat;
  /** `Pᵀ`, `R × dOut` (built on first access). */
  readonly pT: F32Mat;
  /** `Q`, `R × dIn` (built on first access). */
  readonly q: F32Mat;
  /** `Qᵀ`, `dIn × R` (built on first access). */
  readonly qT: F32Mat;
  /** Each term's rank, in column order. */
  readonly termRanks: readonly number[];
  /**
   * Calls `fn` with every term in column order (and its first column); a
   * streamed stack reads each from storage on every call, only the factors
   * named by `factors` (the others are then empty).
   */
  eachTerm(fn: (t: FactorTerm, offset: number) => void, factors?: "a" | "b" | "ab"): void;
}

/** The standard terms of a module: `(s_i B_i, A_i)` per client. */
export function clientTerms(group: ModuleGroup): FactorTerm[] {
  return group.clients.map((c, i) => {
    const b = new Float32Array(c.b.length);
    for (let j = 0; j < b.length; j++) b[j] = c.b[j] * c.scaling;
    return { client: i, rank: c.rank, b, a: c.a };
  });
}

/**
 * Stacks terms: `P`, `Pᵀ`, `Q`, `Qᵀ` are built on first access (copies;
 * inputs are untouched). The product-only route on a device with strided
 * products never builds any of them (`stackProducts`), so a module then holds
 * no second copy of its clients' factors.
 */
export function stackTerms(
  name: string,
  dOut: number,
  dIn: number,
  clients: number,
  terms: readonly FactorTerm[],
): FactorStack {
  const width = terms.reduce((s, t) => s + t.rank, 0);
  const owner = new Int32Array(width);
  let off = 0;
  for (const t of terms) {
    if (t.b.length !== dOut * t.rank || t.a.length !== t.rank * dIn) {
      throw new RangeError(`${name}: term of client ${t.client} has the wrong size for rank ${t.rank}`);
    }
    for (let j = 0; j < t.rank; j++) owner[off + j] = t.client;
    off += t.rank;
  }
  let p: F32Mat | undefined;
  let q: F32Mat | undefined;
  let pT: F32Mat | undefined;
  let qT: F32Mat | undefined;
  return {
    name,
    dIn,
    dOut,
    width,
    clients,
    owner,
    termRanks: terms.map((t) => t.rank),
    eachTerm(fn) {
      let at = 0;
      for (const t of terms) {
        fn(t, at);
        at += t.rank;
      }
    },
    get p() {
      p ??= stackP(dOut, width, terms);
      return p;
    },
    get pT() {
      pT ??= transposeF32(this.p);
      return pT;
    },
    get q() {
      q ??= stackQ(dIn, width, terms);
      return q;
    },
    get qT() {
      qT ??= transposeF32(this.q);
      return qT;
    },
  };
}

function stackP(dOut: number, width: number, terms: readonly FactorTerm[]): F32Mat {
  const p = new Float32Array(dOut * width);
  let off = 0;
  for (const t of terms) {
    const sc = t.scale ?? 1;
    // Loops ordered for contiguous writes; the strided side has only `rank` streams.
    for (let row = 0; row < dOut; row++) {
      const src = row * t.rank;
      const dst = row * width + off;
      for (let j = 0; j < t.rank; j++) p[dst + j] = sc * t.b[src + j];
    }
    off += t.rank;
  }
  return f32(dOut, width, p);
}

function stackQ(dIn: number, width: number, terms: readonly FactorTerm[]): F32Mat {
  const q = new Float32Array(width * dIn);
  let off = 0;
  for (const t of terms) {
    q.set(t.a, off * dIn);
    off += t.rank;
  }
  return f32(width, dIn, q);
}

/** Stacks a module's clients with one term each. */
export function stackModule(group: ModuleGroup): FactorStack {
  const terms = group.clients.map((c, i) => ({ client: i, rank: c.rank, b: c.b, a: c.a, scale: c.scaling }));
  return stackTerms(group.name, group.dOut, group.dIn, group.clients.length, terms);
}

/** Expands per-client coefficients to one per stacked column. */
export function columnCoefficients(stack: FactorStack, coeffs: ArrayLike<number>): Float64Array {
  const out = new Float64Array(stack.width);
  for (let j = 0; j < stack.width; j++) out[j] = coeffs[stack.owner[j]];
  return out;
}

/** `P · diag(colCoef)` (`dOut × R`), built from the stack's `P`. */
export function weightedP(stack: FactorStack, colCoef: Float64Array): F32Mat {
  const R = stack.width;
  const p = stack.p.data;
  const out = new Float32Array(stack.dOut * R);
  for (let i = 0; i < stack.dOut; i++) {
    for (let j = 0; j < R; j++) out[i * R + j] = p[i * R + j] * colCoef[j];
  }
  return f32(stack.dOut, R, out);
}
