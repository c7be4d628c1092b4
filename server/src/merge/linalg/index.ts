/**
 * Dense float64 linear algebra for the merge engine: flat row-major
 * matrices, products, and the symmetric eigen, SVD, generalised eigen
 * decompositions and the PSD pseudo-inverse the solvers use.
 */
export {
  activeDecompositions,
  type Decompositions,
  denseGramNT,
  denseGramTN,
  denseMatmulNT,
  denseMatmulTN,
  jsDecompositions,
  svd,
  symEig,
  useDecompositions,
} from "./decompositions.ts";
export { type GenSymEig, genSymEig } from "./gen-sym-eig.ts";
export {
  add,
  column,
  diagScaleCols,
  diagScaleRows,
  frobenius2,
  fromFloat32,
  fromRows,
  identity,
  type Mat,
  mat,
  matmul,
  matmulNT,
  matmulTN,
  scale,
  sliceCols,
  sub,
  toFloat32,
  traceOfProduct,
  transpose,
} from "./mat.ts";
export { assertFinite, assertSquare } from "./numeric.ts";
export { pinvSym } from "./pinv.ts";
export type { Svd } from "./svd.ts";
export type { SymEig } from "./sym-eig.ts";
