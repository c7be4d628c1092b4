/**
 * The symmetric-definite generalised eigenproblem `H w = λ S w` with `S`
 * only positive SEMI-definite (possibly singular): the Rayleigh–Ritz step of
 * a subspace iteration, where `H = Yᵀ T Y` and `S = Yᵀ Y` for a block `Y`
 * whose columns may be (nearly) dependent.
 *
 * The problem is restricted to `range(S)`: with `S = V Σ Vᵀ` and `V_r` the
 * eigenvectors whose eigenvalues exceed `rcond · σ_max`, let
 * `B = V_r Σ_r^{-1/2}` (so `Bᵀ S B = I`), solve the ordinary symmetric
 * problem `(Bᵀ H B) z = λ z`, and map back `w = B z`.
 */

import { symEig } from "./decompositions.ts";
import { diagScaleCols, type Mat, matmul, matmulTN, sliceCols } from "./mat.ts";
import { assertSquare } from "./numeric.ts";

/** Generalised eigenvalues (descending) and `S`-orthonormal eigenvectors (columns, `n × k`). */
export interface GenSymEig {
  readonly values: Float64Array;
  readonly vectors: Mat;
}

/**
 * Solves `H w = λ S w` on `range(S)`, `k` = number of eigenvalues of `S` above `rcond · max`.
 * Dense equation: `Bᵀ H B = Z Λ Zᵀ`, `W = B Z` with `B = V_k Σ_k^{-1/2}`, hence
 * `Wᵀ S W = I_k`, `Wᵀ H W = Λ` (and `H W = S W Λ` when `null(S) ⊆ null(H)`).
 */
export function genSymEig(h: Mat, s: Mat, rcond = 1e-10): GenSymEig {
  assertSquare("genSymEig (H)", h);
  assertSquare("genSymEig (S)", s);
  if (h.rows !== s.rows)
    throw new RangeError(`genSymEig: H is ${h.rows}×${h.rows}, S is ${s.rows}×${s.rows}`);
  const n = h.rows;
  const es = symEig(s);
  const cut = rcond * (es.values[0] ?? 0);
  let k = 0;
  while (k < n && es.values[k] > cut && es.values[k] > 0) k++;
  const invSqrt = new Float64Array(k);
  for (let j = 0; j < k; j++) invSqrt[j] = 1 / Math.sqrt(es.values[j]);
  const b = diagScaleCols(sliceCols(es.vectors, 0, k), invSqrt);
  const reduced = matmulTN(b, matmul(h, b));
  const er = symEig(reduced);
  return { values: er.values, vectors: matmul(b, er.vectors) };
}
