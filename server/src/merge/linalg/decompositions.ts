/**
 * Which implementation runs the float64 decompositions (`symEig`, `svd`,
 * and through them `genSymEig` and `pinvSym`) and the large float64
 * products next to them (`denseMatmulNT`): the JS ones in this folder by
 * default, or one installed at start-up — native LAPACK, when the compute
 * layer finds it (`compute/lapack.ts`). The merge core stays pure: it never
 * loads anything itself, it calls what it was given.
 */
import { type Mat, matmulNT as matmulNTJs, matmulTN as matmulTNJs } from "./mat.ts";
import { type Svd, svdJs } from "./svd.ts";
import { type SymEig, symEigJs } from "./sym-eig.ts";

/** An implementation of the dense decompositions, with the same contracts as the JS ones. */
export interface Decompositions {
  /** For logs: `js`, `lapack (…)`. */
  readonly name: string;
  /** `(M + Mᵀ)/2 = V Λ Vᵀ`, values descending (see `symEigJs`). */
  symEig(m: Mat): SymEig;
  /** Thin `M = U diag(s) Vᵀ`, `s` descending, non-negative (see `svdJs`). */
  svd(m: Mat): Svd;
  /** `A Bᵀ` in float64 (the large products next to the decompositions: LoRE's SVT). */
  matmulNT(a: Mat, b: Mat): Mat;
  /** `Aᵀ B` in float64 (Grams of tall factors, e.g. a client's `BᵀB`, without a transposed copy). */
  matmulTN(a: Mat, b: Mat): Mat;
  /** `Aᵀ A` in float64, whole and symmetric (a tall factor's Gram, e.g. a client's `BᵀB`: half a product's work). */
  gramTN(a: Mat): Mat;
  /** `A Aᵀ` in float64, whole and symmetric (a wide factor's Gram, e.g. a client's `AAᵀ`). */
  gramNT(a: Mat): Mat;
}

/** The JS implementations (Householder + QL, Golub–Kahan–Reinsch). */
export const jsDecompositions: Decompositions = {
  name: "js",
  symEig: symEigJs,
  svd: svdJs,
  matmulNT: matmulNTJs,
  matmulTN: matmulTNJs,
  gramTN: (a) => matmulTNJs(a, a),
  gramNT: (a) => matmulNTJs(a, a),
};

let active: Decompositions = jsDecompositions;

/** Makes `d` this thread's implementation (the compute layer calls this once at start-up). */
export function useDecompositions(d: Decompositions): void {
  active = d;
}

/** This thread's implementation. */
export function activeDecompositions(): Decompositions {
  return active;
}

/** Eigen-decomposition of the symmetric part of `m`, values descending (this thread's implementation). */
export function symEig(m: Mat): SymEig {
  return active.symEig(m);
}

/** Thin SVD of `m`, singular values descending (this thread's implementation). */
export function svd(m: Mat): Svd {
  return active.svd(m);
}

/** `A Bᵀ` in float64 (this thread's implementation; `matmulNT` of `mat.ts` in JS). */
export function denseMatmulNT(a: Mat, b: Mat): Mat {
  return active.matmulNT(a, b);
}

/** `Aᵀ B` in float64 (this thread's implementation; `matmulTN` of `mat.ts` in JS). */
export function denseMatmulTN(a: Mat, b: Mat): Mat {
  return active.matmulTN(a, b);
}

/** `Aᵀ A` in float64, symmetric (this thread's implementation: BLAS `dsyrk` where LAPACK loaded). */
export function denseGramTN(a: Mat): Mat {
  return active.gramTN(a);
}

/** `A Aᵀ` in float64, symmetric (this thread's implementation: BLAS `dsyrk` where LAPACK loaded). */
export function denseGramNT(a: Mat): Mat {
  return active.gramNT(a);
}
