/**
 * Eigen-decomposition of a real symmetric matrix: Householder reduction to
 * tridiagonal form followed by the implicit QL iteration (EISPACK
 * `tred2`/`tql2`, as in JAMA), on one flat `Float64Array`.
 *
 * The working array holds the eigenvector matrix TRANSPOSED (`w[j·n + k]` is
 * `V[k][j]`): every inner loop of `tred2`/`tql2` runs down a column of `V`,
 * so in this layout they all walk contiguous memory.
 *
 * Measured on the development machine (Node 20.20, shared 2-core Intel Xeon
 * container), random symmetric input, median of 5–11 runs (the range is the
 * spread between quiet and busy moments of the shared machine):
 *   n = 128: 6–9 ms,  n = 256: 44–60 ms,  n = 512: 365–440 ms.
 */
import type { Mat } from "./mat.ts";
import { assertFinite, assertSquare, axpy, dot, hypot, rescaleInPlace } from "./numeric.ts";

/** Eigenvalues (descending) and the matching orthonormal eigenvectors (columns of `vectors`). */
export interface SymEig {
  readonly values: Float64Array;
  readonly vectors: Mat;
}

/** Most implicit QL sweeps spent on one eigenvalue before giving up. */
const MAX_SWEEPS = 200;

/** Rotations applied per cache window in `applyRotations`. */
const ROTATION_WINDOW = 16;

/**
 * Eigen-decomposition of the symmetric part of a square matrix.
 * Dense equation: `(M + Mᵀ)/2 = V Λ Vᵀ`, `VᵀV = I`, `Λ = diag(values)`, values descending.
 */
export function symEigJs(m: Mat): SymEig {
  assertSquare("symEig", m);
  assertFinite("symEig", m);
  const n = m.rows;
  const src = m.data;
  const w = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    w[i * n + i] = src[i * n + i];
    for (let j = i + 1; j < n; j++) {
      const v = 0.5 * src[i * n + j] + 0.5 * src[j * n + i];
      w[i * n + j] = v;
      w[j * n + i] = v;
    }
  }
  // Extreme scales would underflow/overflow products inside tql2.
  const unscale = rescaleInPlace(w);
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  if (n > 0) {
    tred2(w, n, d, e);
    tql2(w, n, d, e);
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => d[b] - d[a]);
  const values = new Float64Array(n);
  const vec = new Float64Array(n * n);
  for (let c = 0; c < n; c++) {
    const src = order[c];
    values[c] = d[src] * unscale;
    const row = src * n;
    for (let r = 0; r < n; r++) vec[r * n + c] = w[row + r];
  }
  return { values, vectors: { rows: n, cols: n, data: vec } };
}

/**
 * Householder tridiagonalisation, accumulating the transformation.
 * On return `d` is the diagonal, `e[1..n)` the sub-diagonal, `w` the
 * orthogonal transform (transposed, see the file comment).
 */
function tred2(w: Float64Array, n: number, d: Float64Array, e: Float64Array): void {
  for (let j = 0; j < n; j++) d[j] = w[j * n + n - 1];
  for (let i = n - 1; i > 0; i--) {
    let scl = 0;
    let h = 0;
    for (let k = 0; k < i; k++) scl += Math.abs(d[k]);
    if (scl === 0) {
      e[i] = d[i - 1];
      for (let j = 0; j < i; j++) {
        d[j] = w[j * n + i - 1];
        w[j * n + i] = 0;
        w[i * n + j] = 0;
      }
    } else {
      for (let k = 0; k < i; k++) {
        d[k] /= scl;
        h += d[k] * d[k];
      }
      let f = d[i - 1];
      let g = Math.sqrt(h);
      if (f > 0) g = -g;
      e[i] = scl * g;
      h -= f * g;
      d[i - 1] = f - g;
      for (let j = 0; j < i; j++) e[j] = 0;
      for (let j = 0; j < i; j++) {
        const row = j * n;
        f = d[j];
        w[i * n + j] = f;
        // Two accumulators: JS engines never reassociate, so one is add-latency bound.
        let g0 = e[j] + w[row + j] * f;
        let g1 = 0;
        let k = j + 1;
        for (; k + 1 < i; k += 2) {
          const v0 = w[row + k];
          const v1 = w[row + k + 1];
          g0 += v0 * d[k];
          g1 += v1 * d[k + 1];
          e[k] += v0 * f;
          e[k + 1] += v1 * f;
        }
        if (k < i) {
          const v = w[row + k];
          g0 += v * d[k];
          e[k] += v * f;
        }
        e[j] = g0 + g1;
      }
      f = 0;
      for (let j = 0; j < i; j++) {
        e[j] /= h;
        f += e[j] * d[j];
      }
      const hh = f / (h + h);
      for (let j = 0; j < i; j++) e[j] -= hh * d[j];
      for (let j = 0; j < i; j++) {
        const row = j * n;
        f = d[j];
        g = e[j];
        for (let k = j; k < i; k++) w[row + k] -= f * e[k] + g * d[k];
        d[j] = w[row + i - 1];
        w[row + i] = 0;
      }
    }
    d[i] = h;
  }
  for (let i = 0; i < n - 1; i++) {
    const ri = i * n;
    const ri1 = ri + n;
    w[ri + n - 1] = w[ri + i];
    w[ri + i] = 1;
    const h = d[i + 1];
    if (h !== 0) {
      for (let k = 0; k <= i; k++) d[k] = w[ri1 + k] / h;
      for (let j = 0; j <= i; j++) {
        const rj = j * n;
        axpy(-dot(w, ri1, w, rj, i + 1), d, 0, w, rj, i + 1);
      }
    }
    for (let k = 0; k <= i; k++) w[ri1 + k] = 0;
  }
  for (let j = 0; j < n; j++) {
    d[j] = w[j * n + n - 1];
    w[j * n + n - 1] = 0;
  }
  w[n * n - 1] = 1;
  e[0] = 0;
}

/**
 * Implicit QL iteration on the tridiagonal `(d, e)`, rotating the rows of `w`.
 * On return `d` holds the (unsorted) eigenvalues and row `j` of `w` the eigenvector of `d[j]`.
 */
function tql2(w: Float64Array, n: number, d: Float64Array, e: Float64Array): void {
  for (let i = 1; i < n; i++) e[i - 1] = e[i];
  e[n - 1] = 0;
  let f = 0;
  let tst1 = 0;
  const eps = 2 ** -52;
  const cs = new Float64Array(n);
  const sn = new Float64Array(n);
  for (let l = 0; l < n; l++) {
    tst1 = Math.max(tst1, Math.abs(d[l]) + Math.abs(e[l]));
    let m = l;
    while (m < n - 1 && Math.abs(e[m]) > eps * tst1) m++;
    if (m > l) {
      let iter = 0;
      do {
        if (++iter > MAX_SWEEPS) throw new Error(`symEig: QL iteration did not converge (n = ${n})`);
        let g = d[l];
        let p = (d[l + 1] - g) / (2 * e[l]);
        let r = hypot(p, 1);
        if (p < 0) r = -r;
        d[l] = e[l] / (p + r);
        d[l + 1] = e[l] * (p + r);
        const dl1 = d[l + 1];
        let h = g - d[l];
        for (let i = l + 2; i < n; i++) d[i] -= h;
        f += h;
        p = d[m];
        let c = 1;
        let c2 = c;
        let c3 = c;
        const el1 = e[l + 1];
        let s = 0;
        let s2 = 0;
        for (let i = m - 1; i >= l; i--) {
          c3 = c2;
          c2 = c;
          s2 = s;
          g = c * e[i];
          h = c * p;
          r = hypot(p, e[i]);
          e[i + 1] = s * r;
          s = e[i] / r;
          c = p / r;
          p = c * d[i] - s * g;
          d[i + 1] = h + s * (c * g + s * d[i]);
          cs[i] = c;
          sn[i] = s;
        }
        applyRotations(w, n, l, m, cs, sn);
        p = (-s * s2 * c3 * el1 * e[l]) / dl1;
        e[l] = s * p;
        d[l] = c * p;
      } while (Math.abs(e[l]) > eps * tst1);
    }
    d[l] += f;
    e[l] = 0;
  }
}

/**
 * Applies one QL sweep's rotations to the rows of `w`, in order
 * `i = m−1, …, l`: rows `(i, i+1) ← (c·r_i − s·r_{i+1}, s·r_i + c·r_{i+1})`.
 * Row `i+1` is, at each step, the output of the previous rotation, so it is
 * carried in registers, eight columns at a time: each entry is loaded and
 * stored once per rotation instead of twice.
 */
function applyRotations(
  w: Float64Array,
  n: number,
  l: number,
  m: number,
  cs: Float64Array,
  sn: Float64Array,
): void {
  // Windows of ROTATION_WINDOW rotations keep the rows they touch in cache
  // while every column chunk passes through; a window's carried row ends up
  // stored in its lowest row, which is exactly where the next window picks it up.
  for (let hi = m; hi > l; hi -= ROTATION_WINDOW)
    rotationWindow(w, n, Math.max(hi - ROTATION_WINDOW, l), hi, cs, sn);
}

/** The sweep's rotations `i = m−1, …, l` for one window of rows `l … m` (see `applyRotations`). */
function rotationWindow(
  w: Float64Array,
  n: number,
  l: number,
  m: number,
  cs: Float64Array,
  sn: Float64Array,
): void {
  let k0 = 0;
  for (; k0 + 7 < n; k0 += 8) {
    let o = m * n + k0;
    let x0 = w[o];
    let x1 = w[o + 1];
    let x2 = w[o + 2];
    let x3 = w[o + 3];
    let x4 = w[o + 4];
    let x5 = w[o + 5];
    let x6 = w[o + 6];
    let x7 = w[o + 7];
    for (let i = m - 1; i >= l; i--) {
      const c = cs[i];
      const s = sn[i];
      const a = i * n + k0;
      const b = a + n;
      let y = w[a];
      w[b] = s * y + c * x0;
      x0 = c * y - s * x0;
      y = w[a + 1];
      w[b + 1] = s * y + c * x1;
      x1 = c * y - s * x1;
      y = w[a + 2];
      w[b + 2] = s * y + c * x2;
      x2 = c * y - s * x2;
      y = w[a + 3];
      w[b + 3] = s * y + c * x3;
      x3 = c * y - s * x3;
      y = w[a + 4];
      w[b + 4] = s * y + c * x4;
      x4 = c * y - s * x4;
      y = w[a + 5];
      w[b + 5] = s * y + c * x5;
      x5 = c * y - s * x5;
      y = w[a + 6];
      w[b + 6] = s * y + c * x6;
      x6 = c * y - s * x6;
      y = w[a + 7];
      w[b + 7] = s * y + c * x7;
      x7 = c * y - s * x7;
    }
    o = l * n + k0;
    w[o] = x0;
    w[o + 1] = x1;
    w[o + 2] = x2;
    w[o + 3] = x3;
    w[o + 4] = x4;
    w[o + 5] = x5;
    w[o + 6] = x6;
    w[o + 7] = x7;
  }
  for (; k0 < n; k0++) {
    let x = w[m * n + k0];
    for (let i = m - 1; i >= l; i--) {
      const c = cs[i];
      const s = sn[i];
      const a = i * n + k0;
      const y = w[a];
      w[a + n] = s * y + c * x;
      x = c * y - s * x;
    }
    w[l * n + k0] = x;
  }
}
