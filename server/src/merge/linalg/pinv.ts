/**
 * Moore–Penrose pseudo-inverses: of a symmetric positive semi-definite
 * matrix through its eigen-decomposition, of any matrix through its SVD.
 * Directions whose eigen/singular value is at most `rcond` times the largest
 * are treated as exactly singular and dropped.
 */
import { diagScaleCols, type Mat, matmulNT, sliceCols } from "./mat.ts";
import { assertSquare } from "./numeric.ts";
import { svd } from "./svd.ts";
import { symEig } from "./sym-eig.ts";

/**
 * Pseudo-inverse of a symmetric PSD matrix (symmetrised first); eigenvalues
 * `λ ≤ rcond · λ_max` (and all non-positive ones) are dropped.
 * Dense equation: `M⁺ = V_k diag(1/λ_k) V_kᵀ` where `(M + Mᵀ)/2 = V Λ Vᵀ`, `λ_k > rcond · λ_max`.
 */
export function pinvSym(m: Mat, rcond = 1e-12): Mat {
  assertSquare("pinvSym", m);
  const { values, vectors } = symEig(m);
  const cut = rcond * (values[0] ?? 0);
  let k = 0;
  while (k < values.length && values[k] > cut && values[k] > 0) k++;
  const inv = new Float64Array(k);
  for (let j = 0; j < k; j++) inv[j] = 1 / values[j];
  const vk = sliceCols(vectors, 0, k);
  return matmulNT(diagScaleCols(vk, inv), vk);
}

/**
 * Moore–Penrose pseudo-inverse of any `m × n` matrix (`n × m` result);
 * singular values `σ ≤ rcond · σ_max` are dropped.
 * Dense equation: `M⁺ = V_k diag(1/σ_k) U_kᵀ` where `M = U diag(σ) Vᵀ`, `σ_k > rcond · σ_max`.
 */
export function pinv(m: Mat, rcond = 1e-12): Mat {
  const { u, s, v } = svd(m);
  const cut = rcond * (s[0] ?? 0);
  let k = 0;
  while (k < s.length && s[k] > cut && s[k] > 0) k++;
  const inv = new Float64Array(k);
  for (let j = 0; j < k; j++) inv[j] = 1 / s[j];
  return matmulNT(diagScaleCols(sliceCols(v, 0, k), inv), sliceCols(u, 0, k));
}
