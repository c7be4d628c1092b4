/**
 * The merge engine's float32 products on native BLAS: `cblas_sgemm` from
 * `libblas.so.3` (OpenBLAS's, where installed) through koffi, on the
 * engine's own `Float32Array`s. Nothing is uploaded: a "resident" matrix is
 * the caller's array itself, read in place (callers never change a matrix
 * while it is resident), so a merge holds no second copy of its factors.
 * Transposed operands are BLAS flags, not copies. Measured here, one thread:
 * 75–180 GFLOP/s against wasm's 23–26 (`npm run bench -- linalg`).
 */
import { type F32Mat, f32, type MatmulDevice, type ResidentMatrix } from "../merge/kernels/device-matmul.ts";
import { blasLibrary, cblasProduct, openNative } from "./lapack.ts";

const ROW_MAJOR = 101;
const NO_TRANS = 111;

type Sgemm = (...args: unknown[]) => number;

/** What loading BLAS gave: the device, or why not. */
export type BlasLoad =
  | { readonly ok: true; readonly device: MatmulDevice }
  | { readonly ok: false; readonly reason: string };

/**
 * Binds `cblas_sgemm` of `library`; resolves with the reason when koffi or
 * the library is missing.
 */
export async function loadBlasDevice(library = blasLibrary()): Promise<BlasLoad> {
  const opened = await openNative(library, "libopenblas0-pthread");
  if (!opened.ok) return opened;
  const sgemm = opened.lib.func(
    "void cblas_sgemm(int layout, int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda, const float *b, int ldb, float beta, _Inout_ float *c, int ldc)",
  );
  return {
    ok: true,
    device: {
      name: `blas (${library})`,
      gemm: (a, b) => product(sgemm, a, false, b, false),
      gemmT: (a, ta, b, tb) => product(sgemm, a, ta, b, tb),
      gemmInto: (m, n, k, alpha, a, b, beta, c) => {
        if (m === 0 || n === 0) return;
        sgemm(
          ROW_MAJOR,
          NO_TRANS,
          NO_TRANS,
          m,
          n,
          k,
          alpha,
          a.data.subarray(a.offset),
          a.ld,
          b.data.subarray(b.offset),
          b.ld,
          beta,
          c.data.subarray(c.offset),
          c.ld,
        );
      },
      resident: (m) => residentOf(sgemm, m),
    },
  };
}

/** `op(A) · op(B)`, `op` transposing when asked. */
function product(sgemm: Sgemm, a: F32Mat, ta: boolean, b: F32Mat, tb: boolean): F32Mat {
  return cblasProduct(sgemm, a, ta, b, tb, f32);
}

function residentOf(sgemm: Sgemm, m: F32Mat): ResidentMatrix {
  return {
    rows: m.rows,
    cols: m.cols,
    times(x) {
      if (x.rows !== m.cols) throw new RangeError(`resident: ${m.rows}×${m.cols} · ${x.rows}×${x.cols}`);
      return product(sgemm, m, false, x, false);
    },
    timesFrom(x) {
      if (x.cols !== m.rows) throw new RangeError(`resident: ${x.rows}×${x.cols} · ${m.rows}×${m.cols}`);
      return product(sgemm, x, false, m, false);
    },
    timesWithGram(x, gram) {
      if (x.rows !== m.cols) throw new RangeError(`resident: ${m.rows}×${m.cols} · ${x.rows}×${x.cols}`);
      if (gram === "xtp" && m.rows !== m.cols)
        throw new RangeError(`resident: xᵀP needs a square matrix, not ${m.rows}×${m.cols}`);
      const p = product(sgemm, m, false, x, false);
      return { product: p, gram: product(sgemm, gram === "xtp" ? x : p, true, p, false) };
    },
    dispose() {},
  };
}
