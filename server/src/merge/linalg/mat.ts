/**
 * Dense float64 matrices in flat row-major storage and the elementary
 * operations on them. Every product loops so that the innermost index walks
 * contiguous memory (i-k-j order, unrolled four ways over `k`), and no hot
 * loop allocates.
 */

/** A dense row-major float64 matrix: entry `(i, j)` is `data[i * cols + j]`. */
export interface Mat {
  readonly rows: number;
  readonly cols: number;
  readonly data: Float64Array;
}

function checkDims(rows: number, cols: number): void {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 0) {
    throw new RangeError(`matrix dimensions must be non-negative integers, got ${rows}×${cols}`);
  }
}

/**
 * A `rows × cols` matrix wrapping `data` without copying, or zero-filled.
 * Dense equation: `M[i][j] = data[i·cols + j]` (or `M = 0`).
 */
export function mat(rows: number, cols: number, data?: Float64Array): Mat {
  checkDims(rows, cols);
  if (data === undefined) return { rows, cols, data: new Float64Array(rows * cols) };
  if (data.length !== rows * cols) {
    throw new RangeError(`matrix data has ${data.length} values, expected ${rows}×${cols}`);
  }
  return { rows, cols, data };
}

/**
 * The `n × n` identity.
 * Dense equation: `I[i][j] = (i = j ? 1 : 0)`.
 */
export function identity(n: number): Mat {
  const m = mat(n, n);
  for (let i = 0; i < n; i++) m.data[i * n + i] = 1;
  return m;
}

/**
 * A matrix from an array of equally long rows (`[]` gives `0 × 0`).
 * Dense equation: `M[i][j] = rows[i][j]`.
 */
export function fromRows(rows: readonly (readonly number[])[]): Mat {
  const r = rows.length;
  const c = r === 0 ? 0 : rows[0].length;
  const out = mat(r, c);
  for (let i = 0; i < r; i++) {
    const row = rows[i];
    if (row.length !== c) throw new RangeError(`fromRows: row ${i} has ${row.length} entries, expected ${c}`);
    for (let j = 0; j < c; j++) out.data[i * c + j] = row[j];
  }
  return out;
}

/**
 * A float64 copy of a row-major float32 matrix.
 * Dense equation: `M[i][j] = float64(data[i·cols + j])`.
 */
export function fromFloat32(rows: number, cols: number, data: Float32Array): Mat {
  checkDims(rows, cols);
  if (data.length !== rows * cols) {
    throw new RangeError(`fromFloat32: data has ${data.length} values, expected ${rows}×${cols}`);
  }
  return { rows, cols, data: Float64Array.from(data) };
}

/**
 * The entries rounded to float32, row-major.
 * Dense equation: `out[i·cols + j] = float32(M[i][j])`.
 */
export function toFloat32(m: Mat): Float32Array {
  return Float32Array.from(m.data);
}

/**
 * The transpose, blocked for cache locality.
 * Dense equation: `T[j][i] = M[i][j]`.
 */
export function transpose(m: Mat): Mat {
  const { rows, cols } = m;
  const src = m.data;
  const out = new Float64Array(rows * cols);
  const B = 32;
  for (let i0 = 0; i0 < rows; i0 += B) {
    const i1 = Math.min(i0 + B, rows);
    for (let j0 = 0; j0 < cols; j0 += B) {
      const j1 = Math.min(j0 + B, cols);
      for (let i = i0; i < i1; i++) {
        const ri = i * cols;
        for (let j = j0; j < j1; j++) out[j * rows + i] = src[ri + j];
      }
    }
  }
  return { rows: cols, cols: rows, data: out };
}

/**
 * `out[oRow, :] += Σ_{k<kn} coef[cOff + k·cStride] · b[k, :]` over the first
 * `kn` rows of `b` (row length `q`), four rows of `b` per pass over `out`.
 */
function accumulateRows(
  out: Float64Array,
  oRow: number,
  coef: Float64Array,
  cOff: number,
  cStride: number,
  b: Float64Array,
  kn: number,
  q: number,
): void {
  let k = 0;
  for (; k + 3 < kn; k += 4) {
    const a0 = coef[cOff + k * cStride];
    const a1 = coef[cOff + (k + 1) * cStride];
    const a2 = coef[cOff + (k + 2) * cStride];
    const a3 = coef[cOff + (k + 3) * cStride];
    const b0 = k * q;
    const b1 = b0 + q;
    const b2 = b1 + q;
    const b3 = b2 + q;
    for (let j = 0; j < q; j++) {
      out[oRow + j] += a0 * b[b0 + j] + a1 * b[b1 + j] + a2 * b[b2 + j] + a3 * b[b3 + j];
    }
  }
  for (; k < kn; k++) {
    const a0 = coef[cOff + k * cStride];
    const b0 = k * q;
    for (let j = 0; j < q; j++) out[oRow + j] += a0 * b[b0 + j];
  }
}

/**
 * The matrix product (i-k-j loop order).
 * Dense equation: `C[i][j] = Σ_k A[i][k] · B[k][j]`.
 */
export function matmul(a: Mat, b: Mat): Mat {
  if (a.cols !== b.rows) throw new RangeError(`matmul: ${a.rows}×${a.cols} · ${b.rows}×${b.cols}`);
  const m = a.rows;
  const p = a.cols;
  const q = b.cols;
  const out = new Float64Array(m * q);
  for (let i = 0; i < m; i++) accumulateRows(out, i * q, a.data, i * p, 1, b.data, p, q);
  return { rows: m, cols: q, data: out };
}

/**
 * The product with the first factor transposed, without forming `Aᵀ`.
 * Dense equation: `C[i][j] = Σ_k A[k][i] · B[k][j]`, i.e. `C = Aᵀ B`.
 */
export function matmulTN(a: Mat, b: Mat): Mat {
  if (a.rows !== b.rows) throw new RangeError(`matmulTN: (${a.rows}×${a.cols})ᵀ · ${b.rows}×${b.cols}`);
  const p = a.rows;
  const m = a.cols;
  const q = b.cols;
  const out = new Float64Array(m * q);
  for (let i = 0; i < m; i++) accumulateRows(out, i * q, a.data, i, m, b.data, p, q);
  return { rows: m, cols: q, data: out };
}

/**
 * The product with the second factor transposed, without forming `Bᵀ`
 * (row-by-row dot products; `A Aᵀ`, the same matrix passed twice, from its
 * upper triangle).
 * Dense equation: `C[i][j] = Σ_k A[i][k] · B[j][k]`, i.e. `C = A Bᵀ`.
 */
export function matmulNT(a: Mat, b: Mat): Mat {
  if (a.cols !== b.cols) throw new RangeError(`matmulNT: ${a.rows}×${a.cols} · (${b.rows}×${b.cols})ᵀ`);
  if (a === b) return gramRows(a);
  const m = a.rows;
  const p = a.cols;
  const q = b.rows;
  const ad = a.data;
  const bd = b.data;
  const out = new Float64Array(m * q);
  for (let i = 0; i < m; i++) {
    const ai = i * p;
    let j = 0;
    for (; j + 1 < q; j += 2) {
      const b0 = j * p;
      const b1 = b0 + p;
      let s0 = 0;
      let s1 = 0;
      for (let k = 0; k < p; k++) {
        const x = ad[ai + k];
        s0 += x * bd[b0 + k];
        s1 += x * bd[b1 + k];
      }
      out[i * q + j] = s0;
      out[i * q + j + 1] = s1;
    }
    if (j < q) {
      const b0 = j * p;
      let s0 = 0;
      for (let k = 0; k < p; k++) s0 += ad[ai + k] * bd[b0 + k];
      out[i * q + j] = s0;
    }
  }
  return { rows: m, cols: q, data: out };
}

/** `A Aᵀ` from the upper triangle (the same dot products as the general case, mirrored). */
function gramRows(a: Mat): Mat {
  const m = a.rows;
  const p = a.cols;
  const ad = a.data;
  const out = new Float64Array(m * m);
  for (let i = 0; i < m; i++) {
    const ai = i * p;
    for (let j = i; j < m; j++) {
      const aj = j * p;
      let s = 0;
      for (let k = 0; k < p; k++) s += ad[ai + k] * ad[aj + k];
      out[i * m + j] = s;
      out[j * m + i] = s;
    }
  }
  return { rows: m, cols: m, data: out };
}

function checkSameShape(what: string, a: Mat, b: Mat): void {
  if (a.rows !== b.rows || a.cols !== b.cols) {
    throw new RangeError(`${what}: shapes ${a.rows}×${a.cols} and ${b.rows}×${b.cols} differ`);
  }
}

/**
 * The entrywise sum.
 * Dense equation: `C[i][j] = A[i][j] + B[i][j]`.
 */
export function add(a: Mat, b: Mat): Mat {
  checkSameShape("add", a, b);
  const out = new Float64Array(a.data.length);
  for (let i = 0; i < out.length; i++) out[i] = a.data[i] + b.data[i];
  return { rows: a.rows, cols: a.cols, data: out };
}

/**
 * The entrywise difference.
 * Dense equation: `C[i][j] = A[i][j] − B[i][j]`.
 */
export function sub(a: Mat, b: Mat): Mat {
  checkSameShape("sub", a, b);
  const out = new Float64Array(a.data.length);
  for (let i = 0; i < out.length; i++) out[i] = a.data[i] - b.data[i];
  return { rows: a.rows, cols: a.cols, data: out };
}

/**
 * The matrix times a scalar.
 * Dense equation: `C[i][j] = α · M[i][j]`.
 */
export function scale(m: Mat, alpha: number): Mat {
  const out = new Float64Array(m.data.length);
  for (let i = 0; i < out.length; i++) out[i] = alpha * m.data[i];
  return { rows: m.rows, cols: m.cols, data: out };
}

/**
 * The squared Frobenius norm.
 * Dense equation: `‖M‖_F² = Σ_{i,j} M[i][j]²`.
 */
export function frobenius2(m: Mat): number {
  const d = m.data;
  let s = 0;
  for (let i = 0; i < d.length; i++) s += d[i] * d[i];
  return s;
}

/**
 * The trace of a product, without forming the product (`A` is `m × n`, `B` is `n × m`).
 * Dense equation: `tr(A B) = Σ_i Σ_k A[i][k] · B[k][i]`.
 */
export function traceOfProduct(a: Mat, b: Mat): number {
  if (a.cols !== b.rows || a.rows !== b.cols) {
    throw new RangeError(`traceOfProduct: ${a.rows}×${a.cols} · ${b.rows}×${b.cols} is not square`);
  }
  const m = a.rows;
  const n = a.cols;
  const ad = a.data;
  const bd = b.data;
  let s = 0;
  for (let i = 0; i < m; i++) {
    const ai = i * n;
    for (let k = 0; k < n; k++) s += ad[ai + k] * bd[k * m + i];
  }
  return s;
}

/**
 * A copy of column `j`.
 * Dense equation: `c[i] = M[i][j]`.
 */
export function column(m: Mat, j: number): Float64Array {
  if (!Number.isInteger(j) || j < 0 || j >= m.cols) {
    throw new RangeError(`column: index ${j} outside 0..${m.cols - 1}`);
  }
  const out = new Float64Array(m.rows);
  for (let i = 0; i < m.rows; i++) out[i] = m.data[i * m.cols + j];
  return out;
}

/**
 * The columns `start ≤ j < end`, copied.
 * Dense equation: `C[i][j − start] = M[i][j]`.
 */
export function sliceCols(m: Mat, start: number, end: number): Mat {
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end < start || end > m.cols) {
    throw new RangeError(`sliceCols: [${start}, ${end}) outside 0..${m.cols}`);
  }
  const w = end - start;
  const out = new Float64Array(m.rows * w);
  for (let i = 0; i < m.rows; i++) {
    const src = i * m.cols + start;
    out.set(m.data.subarray(src, src + w), i * w);
  }
  return { rows: m.rows, cols: w, data: out };
}

/**
 * The matrix with each column scaled (`d` has one entry per column).
 * Dense equation: `C = M · diag(d)`, i.e. `C[i][j] = M[i][j] · d[j]`.
 */
export function diagScaleCols(m: Mat, d: Float64Array): Mat {
  if (d.length !== m.cols) throw new RangeError(`diagScaleCols: ${d.length} scales for ${m.cols} columns`);
  const { rows, cols } = m;
  const src = m.data;
  const out = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    const ri = i * cols;
    for (let j = 0; j < cols; j++) out[ri + j] = src[ri + j] * d[j];
  }
  return { rows, cols, data: out };
}

/**
 * The matrix with each row scaled (`d` has one entry per row).
 * Dense equation: `C = diag(d) · M`, i.e. `C[i][j] = d[i] · M[i][j]`.
 */
export function diagScaleRows(m: Mat, d: Float64Array): Mat {
  if (d.length !== m.rows) throw new RangeError(`diagScaleRows: ${d.length} scales for ${m.rows} rows`);
  const { rows, cols } = m;
  const src = m.data;
  const out = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    const ri = i * cols;
    const di = d[i];
    for (let j = 0; j < cols; j++) out[ri + j] = di * src[ri + j];
  }
  return { rows, cols, data: out };
}
