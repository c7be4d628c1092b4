/** Float32 matrices for the product tests: random ones, and float64 references to compare with. */
import assert from "node:assert/strict";
import { type F32Mat, f32 } from "../kernels/device-matmul.ts";
import { normalAt, streamKey } from "../random.ts";

/** A `rows × cols` matrix of standard normals from stream `(seed, stream)`. */
export function randomF32(rows: number, cols: number, seed: number, stream = "f32-products"): F32Mat {
  const key = streamKey(seed, stream);
  return f32(
    rows,
    cols,
    Float32Array.from({ length: rows * cols }, (_, i) => normalAt(key, i)),
  );
}

/** `A · B` in float64. */
export function product64(a: F32Mat, b: F32Mat): Float64Array {
  const out = new Float64Array(a.rows * b.cols);
  for (let i = 0; i < a.rows; i++)
    for (let k = 0; k < a.cols; k++) {
      const x = a.data[i * a.cols + k];
      for (let j = 0; j < b.cols; j++) out[i * b.cols + j] += x * b.data[k * b.cols + j];
    }
  return out;
}

/** `Mᵀ`. */
export function transposedF32(m: F32Mat): F32Mat {
  const out = f32(m.cols, m.rows);
  for (let i = 0; i < m.rows; i++)
    for (let j = 0; j < m.cols; j++) out.data[j * m.rows + i] = m.data[i * m.cols + j];
  return out;
}

/**
 * Asserts `got` is `rows × cols` and within float32 rounding of `want`:
 * every entry within `1e-5` of the largest entry's magnitude (at least 1),
 * as sums over hundreds of terms round.
 */
export function assertNearF32(
  got: F32Mat,
  rows: number,
  cols: number,
  want: Float64Array,
  what: string,
): void {
  assert.equal(got.rows, rows, `${what}: rows`);
  assert.equal(got.cols, cols, `${what}: cols`);
  assert.equal(got.data.length, want.length, `${what}: size`);
  let worst = 0;
  let scale = 1;
  for (let i = 0; i < want.length; i++) {
    worst = Math.max(worst, Math.abs(got.data[i] - want[i]));
    scale = Math.max(scale, Math.abs(want[i]));
  }
  assert.ok(worst < 1e-5 * scale, `${what}: max |error| ${worst} (largest entry ${scale})`);
}
