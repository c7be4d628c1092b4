/**
 * The few float32 products the merge engine needs, on plain row-major
 * `Float32Array`s, run by this thread's matmul device: TensorFlow.js on its
 * active backend by default (`tfjsDevice`), or one installed at start-up by
 * the compute layer — WebGPU through Dawn (`compute/webgpu-device.ts`), or
 * native BLAS (`compute/blas-device.ts`).
 * On TensorFlow.js only the non-transposed product is used: on the wasm
 * backend `matMul` with `transposeA/B` runs ~15× slower (measured: 1.7 vs
 * 31 GFLOP/s for 512×4096×512), so callers pass explicit transposes, which
 * are cheap to build in JS while stacking factors. A device that takes
 * transposed operands and strided views without copies (BLAS) says so with
 * `gemmT` and `gemmInto`, and callers then skip the transposes and stacks.
 */
import * as tf from "@tensorflow/tfjs-core";

/** A row-major float32 matrix. */
export interface F32Mat {
  readonly rows: number;
  readonly cols: number;
  readonly data: Float32Array;
}

/** Wraps data as an `F32Mat`, checking the length. */
export function f32(rows: number, cols: number, data: Float32Array = new Float32Array(rows * cols)): F32Mat {
  if (data.length !== rows * cols) {
    throw new RangeError(`matrix data has ${data.length} values, expected ${rows}×${cols}`);
  }
  return { rows, cols, data };
}

/** Where the products run (see the module comment). */
export interface MatmulDevice {
  /** For logs and test names. */
  readonly name: string;
  /** `A · B`, for shapes that multiply and are not empty (`gemm()` checks both first). */
  gemm(a: F32Mat, b: F32Mat): F32Mat;
  /** Keeps `m` on the device for repeated products. */
  resident(m: F32Mat): ResidentMatrix;
  /**
   * `op(A) · op(B)` with `op` transposing where asked, for devices that take
   * transposed operands without a copy (BLAS); without it, callers pass
   * explicit transposes (see the module comment).
   */
  gemmT?(a: F32Mat, ta: boolean, b: F32Mat, tb: boolean): F32Mat;
  /**
   * `C ← α · A · B + β · C` on strided views, in place (BLAS `sgemm`), for
   * devices that run many small products without copies: the stacked
   * products then go term by term and no stacked factor is ever built.
   */
  gemmInto?(
    m: number,
    n: number,
    k: number,
    alpha: number,
    a: Strided,
    b: Strided,
    beta: number,
    c: Strided,
  ): void;
}

/** A row-major matrix inside `data`: element `(i, j)` at `data[offset + i·ld + j]`. */
export interface Strided {
  readonly data: Float32Array;
  readonly offset: number;
  readonly ld: number;
}

/** This thread's in-place strided product, when its device has one. */
export function stridedGemm(): MatmulDevice["gemmInto"] {
  return (device ?? tfjsDevice).gemmInto;
}

let device: MatmulDevice | undefined;

/** Makes `d` this thread's matmul device (`undefined`: back to TensorFlow.js). */
export function useMatmulDevice(d: MatmulDevice | undefined): void {
  device = d;
}

/** `C = A · B` on this thread's device: `C[i][j] = Σ_k A[i][k] B[k][j]`. */
export function gemm(a: F32Mat, b: F32Mat): F32Mat {
  if (a.cols !== b.rows) throw new RangeError(`gemm: ${a.rows}×${a.cols} · ${b.rows}×${b.cols}`);
  if (a.rows === 0 || b.cols === 0 || a.cols === 0) return f32(a.rows, b.cols);
  return (device ?? tfjsDevice).gemm(a, b);
}

/** Uploads `m` once for repeated left-multiplication, on this thread's device. */
export function resident(m: F32Mat): ResidentMatrix {
  return (device ?? tfjsDevice).resident(m);
}

/**
 * `Aᵀ · B`: on the device's transposed product when it has one, else
 * `gemm(aT(), B)` with the caller's transpose (e.g. one it caches).
 */
export function gemmTN(a: F32Mat, b: F32Mat, aT: () => F32Mat): F32Mat {
  const d = device ?? tfjsDevice;
  if (d.gemmT === undefined) return gemm(aT(), b);
  if (a.rows !== b.rows) throw new RangeError(`gemm: (${a.rows}×${a.cols})ᵀ · ${b.rows}×${b.cols}`);
  return d.gemmT(a, true, b, false);
}

/** `A · Bᵀ`: as {@link gemmTN}, with the caller's `bT()` on devices without transposed products. */
export function gemmNT(a: F32Mat, b: F32Mat, bT: () => F32Mat): F32Mat {
  const d = device ?? tfjsDevice;
  if (d.gemmT === undefined) return gemm(a, bT());
  if (a.cols !== b.cols) throw new RangeError(`gemm: ${a.rows}×${a.cols} · (${b.rows}×${b.cols})ᵀ`);
  return d.gemmT(a, false, b, true);
}

function tfjsGemm(a: F32Mat, b: F32Mat): F32Mat {
  const out = tf.tidy(() => {
    const ta = tf.tensor2d(a.data, [a.rows, a.cols]);
    const tb = tf.tensor2d(b.data, [b.rows, b.cols]);
    return tf.matMul(ta, tb);
  });
  const data = out.dataSync() as Float32Array;
  out.dispose();
  return f32(a.rows, b.cols, Float32Array.from(data));
}

/** Transpose in JS, blocked for cache locality: `T[j][i] = A[i][j]`. */
export function transposeF32(a: F32Mat): F32Mat {
  const { rows, cols, data } = a;
  const out = new Float32Array(rows * cols);
  const bs = 32;
  for (let i0 = 0; i0 < rows; i0 += bs) {
    const i1 = Math.min(rows, i0 + bs);
    for (let j0 = 0; j0 < cols; j0 += bs) {
      const j1 = Math.min(cols, j0 + bs);
      for (let i = i0; i < i1; i++) {
        const row = i * cols;
        for (let j = j0; j < j1; j++) out[j * rows + i] = data[row + j];
      }
    }
  }
  return f32(cols, rows, out);
}

/**
 * A matrix kept resident on the backend for repeated products
 * (`left · X` for many `X`). Call `dispose()` when done.
 */
export interface ResidentMatrix {
  readonly rows: number;
  readonly cols: number;
  /** `left · x`. */
  times(x: F32Mat): F32Mat;
  /** `x · left` (the resident matrix on the right). */
  timesFrom(x: F32Mat): F32Mat;
  /**
   * `P = left · x` together with one small Gram, `xᵀP` (square `left` only)
   * or `PᵀP`, in one backend round trip (the iteration loops call this many
   * times).
   */
  timesWithGram(x: F32Mat, gram: "xtp" | "ptp"): { product: F32Mat; gram: F32Mat };
  dispose(): void;
}

function tfjsResident(m: F32Mat): ResidentMatrix {
  const t = tf.tensor2d(m.data, [m.rows, m.cols]);
  return {
    rows: m.rows,
    cols: m.cols,
    times(x: F32Mat): F32Mat {
      if (x.rows !== m.cols) throw new RangeError(`resident: ${m.rows}×${m.cols} · ${x.rows}×${x.cols}`);
      const out = tf.tidy(() => tf.matMul(t, tf.tensor2d(x.data, [x.rows, x.cols])));
      const data = Float32Array.from(out.dataSync() as Float32Array);
      out.dispose();
      return f32(m.rows, x.cols, data);
    },
    timesFrom(x: F32Mat): F32Mat {
      if (x.cols !== m.rows) throw new RangeError(`resident: ${x.rows}×${x.cols} · ${m.rows}×${m.cols}`);
      const out = tf.tidy(() => tf.matMul(tf.tensor2d(x.data, [x.rows, x.cols]), t));
      const data = Float32Array.from(out.dataSync() as Float32Array);
      out.dispose();
      return f32(x.rows, m.cols, data);
    },
    timesWithGram(x: F32Mat, gram: "xtp" | "ptp") {
      if (x.rows !== m.cols) throw new RangeError(`resident: ${m.rows}×${m.cols} · ${x.rows}×${x.cols}`);
      if (gram === "xtp" && m.rows !== m.cols)
        throw new RangeError(`resident: xᵀP needs a square matrix, not ${m.rows}×${m.cols}`);
      const [p, g] = tf.tidy(() => {
        const tx = tf.tensor2d(x.data, [x.rows, x.cols]);
        const prod = tf.matMul(t, tx);
        const left = gram === "xtp" ? tf.transpose(tx) : tf.transpose(prod);
        return [prod, tf.matMul(left, prod)];
      });
      const read = (u: tf.Tensor, rows: number, cols: number) => {
        const d = Float32Array.from(u.dataSync() as Float32Array);
        u.dispose();
        return f32(rows, cols, d);
      };
      return { product: read(p, m.rows, x.cols), gram: read(g, x.cols, x.cols) };
    },
    dispose() {
      t.dispose();
    },
  };
}

/** TensorFlow.js on its active backend (tensorflow, wasm or cpu). */
export const tfjsDevice: MatmulDevice = { name: "tfjs", gemm: tfjsGemm, resident: tfjsResident };
