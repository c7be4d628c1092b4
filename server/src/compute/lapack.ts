/**
 * Native LAPACK for the merge engine's float64 decompositions: Debian's
 * `liblapacke` (over OpenBLAS where installed) called through `koffi`, a
 * prebuilt FFI from npm. `symEig` is `LAPACKE_dsyevd` (divide and conquer),
 * `svd` is `LAPACKE_dgesdd` (thin, divide and conquer), both row-major,
 * `matmulNT` / `matmulTN` are `cblas_dgemm` and `gramNT` / `gramTN` are
 * `cblas_dsyrk` from `libblas.so.3` (OpenBLAS's, where installed);
 * results are put in the JS implementations' form (values descending,
 * eigen/singular vectors as columns), so either runs behind the same tests.
 *
 * `TRIBUTARY_LAPACK=off` keeps the JS implementations, `=on` makes a missing
 * library a start-up error, and `TRIBUTARY_LAPACK_LIB` names the shared
 * library to load (default `liblapacke.so.3`).
 */
import {
  assertFinite,
  assertSquare,
  type Decompositions,
  jsDecompositions,
  type Mat,
  type Svd,
  type SymEig,
  useDecompositions,
} from "../merge/linalg/index.ts";

const ROW_MAJOR = 101;
const V = "V".charCodeAt(0);
const U = "U".charCodeAt(0);
const S = "S".charCodeAt(0);
const NO_TRANS = 111;
/** CBLAS `CblasUpper`. */
const UPPER = 121;
const TRANS = 112;

/** What loading LAPACK gave: the implementation, or why not. */
export type LapackLoad =
  | { readonly ok: true; readonly decompositions: Decompositions }
  | { readonly ok: false; readonly reason: string };

interface Koffi {
  load(path: string): NativeLibrary;
}

/** A shared library opened through koffi. */
export interface NativeLibrary {
  func(signature: string): (...args: unknown[]) => number;
}

/** Opens `library` through koffi, or says why not (`hint`: what to install). */
export async function openNative(
  library: string,
  hint: string,
): Promise<
  { readonly ok: true; readonly lib: NativeLibrary } | { readonly ok: false; readonly reason: string }
> {
  let koffi: Koffi;
  try {
    const mod = (await import("koffi")) as unknown as { default?: Koffi } & Koffi;
    koffi = mod.default ?? mod;
  } catch (err) {
    return {
      ok: false,
      reason: `koffi not installed (${err instanceof Error ? err.message.split("\n")[0] : String(err)})`,
    };
  }
  try {
    return { ok: true, lib: koffi.load(library) };
  } catch (err) {
    const why = err instanceof Error ? err.message.split("\n")[0] : String(err);
    return { ok: false, reason: `${library} not loadable (${why}); apt-get install ${hint}` };
  }
}

/** The BLAS library: `TRIBUTARY_BLAS_LIB`, default `libblas.so.3` (OpenBLAS's, where installed). */
export function blasLibrary(): string {
  return process.env.TRIBUTARY_BLAS_LIB || "libblas.so.3";
}

/**
 * Loads `library` through koffi and binds `dsyevd` and `dgesdd`; resolves
 * with the reason instead when koffi or the library is missing.
 *
 * @example
 * const r = await loadLapack();
 * if (r.ok) useDecompositions(r.decompositions);
 */
export async function loadLapack(
  library = process.env.TRIBUTARY_LAPACK_LIB || "liblapacke.so.3",
): Promise<LapackLoad> {
  const opened = await openNative(library, "liblapacke libopenblas0-pthread");
  if (!opened.ok) return opened;
  const lib = opened.lib;
  const blasOpened = await openNative(blasLibrary(), "libopenblas0-pthread");
  if (!blasOpened.ok) return blasOpened;
  const blas = blasOpened.lib;
  const dgemm = blas.func(
    "void cblas_dgemm(int layout, int ta, int tb, int m, int n, int k, double alpha, const double *a, int lda, const double *b, int ldb, double beta, _Inout_ double *c, int ldc)",
  );
  const dsyrk = blas.func(
    "void cblas_dsyrk(int layout, int uplo, int trans, int n, int k, double alpha, const double *a, int lda, double beta, _Inout_ double *c, int ldc)",
  );
  const dsyevd = lib.func(
    "int LAPACKE_dsyevd(int layout, char jobz, char uplo, int n, _Inout_ double *a, int lda, _Out_ double *w)",
  );
  const dgesdd = lib.func(
    "int LAPACKE_dgesdd(int layout, char jobz, int m, int n, _Inout_ double *a, int lda, _Out_ double *s, _Out_ double *u, int ldu, _Out_ double *vt, int ldvt)",
  );
  return {
    ok: true,
    decompositions: {
      name: `lapack (${library})`,
      symEig: (m) => symEigLapack(dsyevd, m),
      svd: (m) => svdLapack(dgesdd, m),
      matmulNT: (a, b) => {
        if (a.cols !== b.cols) throw new RangeError(`matmulNT: ${a.rows}×${a.cols} · (${b.rows}×${b.cols})ᵀ`);
        return cblasProduct(dgemm, a, false, b, true, float64);
      },
      matmulTN: (a, b) => {
        if (a.rows !== b.rows) throw new RangeError(`matmulTN: (${a.rows}×${a.cols})ᵀ · ${b.rows}×${b.cols}`);
        return cblasProduct(dgemm, a, true, b, false, float64);
      },
      gramTN: (a) => cblasGram(dsyrk, a, true),
      gramNT: (a) => cblasGram(dsyrk, a, false),
    },
  };
}

/** A row-major matrix of either precision, as the BLAS products take it. */
interface Dense<D extends Float32Array | Float64Array> {
  readonly rows: number;
  readonly cols: number;
  readonly data: D;
}

/**
 * `op(A) · op(B)` by a CBLAS `?gemm` (`cblas_sgemm` or `cblas_dgemm`,
 * row-major; shapes already checked), into `alloc(m, n)`; empty shapes
 * give zeros.
 */
export function cblasProduct<D extends Float32Array | Float64Array, M extends Dense<D>>(
  gemm: (...args: unknown[]) => unknown,
  a: Dense<D>,
  ta: boolean,
  b: Dense<D>,
  tb: boolean,
  alloc: (rows: number, cols: number) => M,
): M {
  const m = ta ? a.cols : a.rows;
  const k = ta ? a.rows : a.cols;
  const n = tb ? b.rows : b.cols;
  const out = alloc(m, n);
  if (m > 0 && n > 0 && k > 0) {
    gemm(
      ROW_MAJOR,
      ta ? TRANS : NO_TRANS,
      tb ? TRANS : NO_TRANS,
      m,
      n,
      k,
      1,
      a.data,
      a.cols,
      b.data,
      b.cols,
      0,
      out.data,
      n,
    );
  }
  return out;
}

/**
 * `AᵀA` (`transposed`) or `AAᵀ` by `cblas_dsyrk` (row-major, upper
 * triangle), mirrored into the lower one: the whole symmetric Gram, in half
 * a `dgemm`'s work.
 */
function cblasGram(syrk: (...args: unknown[]) => unknown, a: Mat, transposed: boolean): Mat {
  const n = transposed ? a.cols : a.rows;
  const k = transposed ? a.rows : a.cols;
  const out = float64(n, n);
  if (n === 0 || k === 0) return out;
  syrk(ROW_MAJOR, UPPER, transposed ? TRANS : NO_TRANS, n, k, 1, a.data, a.cols, 0, out.data, n);
  const c = out.data;
  for (let i = 1; i < n; i++) for (let j = 0; j < i; j++) c[i * n + j] = c[j * n + i];
  return out;
}

const float64 = (rows: number, cols: number): Mat => ({ rows, cols, data: new Float64Array(rows * cols) });

function symEigLapack(dsyevd: (...args: unknown[]) => number, m: Mat): SymEig {
  assertSquare("symEig", m);
  assertFinite("symEig", m);
  const n = m.rows;
  if (n === 0) return jsDecompositions.symEig(m);
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) a[i * n + j] = 0.5 * m.data[i * n + j] + 0.5 * m.data[j * n + i];
  }
  const w = new Float64Array(n);
  const info = dsyevd(ROW_MAJOR, V, U, n, a, n, w);
  if (info !== 0) throw new Error(`symEig: LAPACKE_dsyevd failed (info ${info}, n = ${n})`);
  // Ascending → descending: reverse the values and the eigenvector columns.
  const values = new Float64Array(n);
  const vec = new Float64Array(n * n);
  for (let c = 0; c < n; c++) {
    const src = n - 1 - c;
    values[c] = w[src];
    for (let r = 0; r < n; r++) vec[r * n + c] = a[r * n + src];
  }
  return { values, vectors: { rows: n, cols: n, data: vec } };
}

function svdLapack(dgesdd: (...args: unknown[]) => number, m: Mat): Svd {
  assertFinite("svd", m);
  const { rows, cols } = m;
  const k = Math.min(rows, cols);
  if (k === 0) return jsDecompositions.svd(m);
  const a = Float64Array.from(m.data);
  const s = new Float64Array(k);
  const u = new Float64Array(rows * k);
  const vt = new Float64Array(k * cols);
  const info = dgesdd(ROW_MAJOR, S, rows, cols, a, cols, s, u, k, vt, cols);
  if (info !== 0) throw new Error(`svd: LAPACKE_dgesdd failed (info ${info}, ${rows}×${cols})`);
  const v = new Float64Array(cols * k);
  for (let j = 0; j < k; j++) for (let i = 0; i < cols; i++) v[i * k + j] = vt[j * cols + i];
  return { u: { rows, cols: k, data: u }, s, v: { rows: cols, cols: k, data: v } };
}

/**
 * The decompositions this thread should use: LAPACK unless
 * `TRIBUTARY_LAPACK=off` or it cannot be loaded (then the JS ones, with the
 * reason); `TRIBUTARY_LAPACK=on` turns a missing library into an error.
 */
export async function selectDecompositions(
  mode = process.env.TRIBUTARY_LAPACK ?? "auto",
): Promise<{ decompositions: Decompositions; skipped?: string }> {
  if (!["auto", "on", "off"].includes(mode)) {
    throw new Error(`TRIBUTARY_LAPACK=${mode} is not one of auto, on, off`);
  }
  if (mode === "off")
    return { decompositions: jsDecompositions, skipped: "LAPACK off (TRIBUTARY_LAPACK=off)" };
  const r = await loadLapack();
  if (r.ok) return { decompositions: r.decompositions };
  if (mode === "on") throw new Error(`TRIBUTARY_LAPACK=on but ${r.reason}`);
  return { decompositions: jsDecompositions, skipped: r.reason };
}

/**
 * Selects this thread's decompositions (see `selectDecompositions`) and
 * installs them; returns what runs, for the start-up log. The merge pool's
 * workers do this in `selectBackend`; a thread that runs float64 work of its
 * own (the coordinator's intake) calls it once at start-up.
 */
export async function installDecompositions(): Promise<{ name: string; skipped?: string }> {
  const { decompositions, skipped } = await selectDecompositions();
  useDecompositions(decompositions);
  return { name: decompositions.name, ...(skipped !== undefined ? { skipped } : {}) };
}
