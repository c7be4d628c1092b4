/**
 * The Moore–Penrose pseudo-inverse of a symmetric positive semi-definite
 * matrix through its eigen-decomposition (the ALS solver's normal
 * equations). Directions whose eigenvalue is at most `rcond` times the
 * largest are treated as exactly singular and dropped.
 */

import { symEig } from "./decompositions.ts";
import { diagScaleCols, type Mat, matmulNT, sliceCols } from "./mat.ts";
import { assertSquare } from "./numeric.ts";

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
