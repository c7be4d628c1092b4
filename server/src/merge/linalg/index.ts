/**
 * Dense float64 linear algebra for the merge engine: flat row-major
 * matrices, products, and the symmetric eigen, SVD, pseudo-inverse,
 * generalised eigen, Cholesky and QR decompositions.
 */
export { cholesky, choleskySolve, solveLowerTriangular, solveUpperTriangular } from "./cholesky.ts";
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
export { pinv, pinvSym } from "./pinv.ts";
export { type Qr, qr } from "./qr.ts";
export { type Svd, svd } from "./svd.ts";
export { type SymEig, symEig } from "./sym-eig.ts";
