/**
 * Thin singular value decomposition by Golub–Kahan–Reinsch: Householder
 * bidiagonalisation, then implicit-shift QR on the bidiagonal (LINPACK
 * `dsvdc`, as in JAMA), on flat `Float64Array`s.
 *
 * The algorithm is run on a tall matrix `B` (`R × C`, `R ≥ C`): `B = M` for
 * a tall input, `B = Mᵀ` for a wide one, whose factors are then swapped.
 * `B`, `U` and `V` are all held TRANSPOSED (`bt[j·R + i]` is `B[i][j]`,
 * `ut[j·R + i]` is `U[i][j]`, `vt[j·C + i]` is `V[i][j]`): every inner loop
 * of the algorithm runs down a column, so in this layout it walks
 * contiguous memory.
 *
 * Measured on the development machine (Node 20.20, shared 2-core Intel Xeon
 * container), random input, median of 5–11 runs (the range is the spread
 * between quiet and busy moments of the shared machine):
 *   128×128: 15–18 ms,  256×256: 95–125 ms,  512×512: 865–990 ms,
 *   1000×128 and 128×1000: 90–120 ms.
 */
import type { Mat } from "./mat.ts";
import { assertFinite, axpy, dot, hypot, norm2, rescaleInPlace } from "./numeric.ts";

/** A thin SVD `M = U diag(s) Vᵀ`: `U` is `m × k`, `V` is `n × k`, `k = min(m, n)`. */
export interface Svd {
  readonly u: Mat;
  readonly s: Float64Array;
  readonly v: Mat;
}

/** Most implicit QR sweeps spent on one singular value before giving up. */
const MAX_SWEEPS = 500;

/** Rotations applied per cache window in `applyChain`. */
const CHAIN_WINDOW = 16;

/**
 * Thin SVD of any `m × n` matrix, singular values descending and non-negative.
 * Dense equation: `M = U diag(s) Vᵀ`, `UᵀU = VᵀV = I_k`, `s[0] ≥ … ≥ s[k−1] ≥ 0`.
 */
export function svdJs(m: Mat): Svd {
  assertFinite("svd", m);
  const wide = m.rows < m.cols;
  const R = wide ? m.cols : m.rows;
  const C = wide ? m.rows : m.cols;
  // bt = Bᵀ (C × R): for a wide input that is M itself, for a tall one Mᵀ.
  const bt = new Float64Array(R * C);
  if (wide) bt.set(m.data);
  else {
    const src = m.data;
    for (let i = 0; i < R; i++) {
      const ri = i * C;
      for (let j = 0; j < C; j++) bt[j * R + i] = src[ri + j];
    }
  }
  // Extreme scales would underflow/overflow products inside the QR shift.
  const unscale = rescaleInPlace(bt);
  const s = new Float64Array(C);
  const ut = new Float64Array(C * R);
  const vt = new Float64Array(C * C);
  if (C > 0) gkr(bt, R, C, s, ut, vt);
  if (unscale !== 1) for (let j = 0; j < C; j++) s[j] *= unscale;
  // Column j of U is row j of ut; of V, row j of vt.
  const uRows = untranspose(ut, C, R);
  const vRows = untranspose(vt, C, C);
  return wide ? { u: vRows, s, v: uRows } : { u: uRows, s, v: vRows };
}

/** The `len × k` matrix whose column `j` is row `j` of `t` (`k × len`). */
function untranspose(t: Float64Array, k: number, len: number): Mat {
  const out = new Float64Array(len * k);
  for (let j = 0; j < k; j++) {
    const rj = j * len;
    for (let i = 0; i < len; i++) out[i * k + j] = t[rj + i];
  }
  return { rows: len, cols: k, data: out };
}

/**
 * LINPACK/JAMA SVD of the tall `m × n` matrix `A` (`m ≥ n ≥ 1`) given as
 * `at = Aᵀ`; fills `s` (descending), `ut = Uᵀ` (`n × m`), `vt = Vᵀ` (`n × n`).
 */
function gkr(
  at: Float64Array,
  m: number,
  n: number,
  s: Float64Array,
  ut: Float64Array,
  vt: Float64Array,
): void {
  const nu = n;
  const e = new Float64Array(n);
  const work = new Float64Array(m);
  const nct = Math.min(m - 1, n);
  const nrt = Math.max(0, Math.min(n - 2, m));

  // Bidiagonalise: diagonal into s, super-diagonal into e.
  for (let k = 0; k < Math.max(nct, nrt); k++) {
    const ck = k * m;
    if (k < nct) {
      let sk = norm2(at, ck + k, ck + m);
      if (sk !== 0) {
        if (at[ck + k] < 0) sk = -sk;
        for (let i = k; i < m; i++) at[ck + i] /= sk;
        at[ck + k] += 1;
      }
      s[k] = -sk;
    }
    for (let j = k + 1; j < n; j++) {
      const cj = j * m;
      if (k < nct && s[k] !== 0) {
        const t = -dot(at, ck + k, at, cj + k, m - k) / at[ck + k];
        axpy(t, at, ck + k, at, cj + k, m - k);
      }
      e[j] = at[cj + k];
    }
    if (k < nct) {
      const uk = k * m;
      for (let i = k; i < m; i++) ut[uk + i] = at[ck + i];
    }
    if (k < nrt) {
      let ek = norm2(e, k + 1, n);
      if (ek !== 0) {
        if (e[k + 1] < 0) ek = -ek;
        for (let i = k + 1; i < n; i++) e[i] /= ek;
        e[k + 1] += 1;
      }
      e[k] = -ek;
      if (k + 1 < m && ek !== 0) {
        for (let i = k + 1; i < m; i++) work[i] = 0;
        for (let j = k + 1; j < n; j++) {
          const ej = e[j];
          const cj = j * m;
          for (let i = k + 1; i < m; i++) work[i] += ej * at[cj + i];
        }
        for (let j = k + 1; j < n; j++) {
          const t = -e[j] / e[k + 1];
          const cj = j * m;
          for (let i = k + 1; i < m; i++) at[cj + i] += t * work[i];
        }
      }
      const vk = k * n;
      for (let i = k + 1; i < n; i++) vt[vk + i] = e[i];
    }
  }

  // The final bidiagonal matrix, of order p.
  let p = n;
  if (nct < n) s[nct] = at[nct * m + nct];
  if (nrt + 1 < p) e[nrt] = at[(p - 1) * m + nrt];
  e[p - 1] = 0;

  // Generate U.
  for (let j = nct; j < nu; j++) {
    const uj = j * m;
    ut.fill(0, uj, uj + m);
    ut[uj + j] = 1;
  }
  for (let k = nct - 1; k >= 0; k--) {
    const uk = k * m;
    if (s[k] !== 0) {
      for (let j = k + 1; j < nu; j++) {
        const uj = j * m;
        const t = -dot(ut, uk + k, ut, uj + k, m - k) / ut[uk + k];
        axpy(t, ut, uk + k, ut, uj + k, m - k);
      }
      for (let i = k; i < m; i++) ut[uk + i] = -ut[uk + i];
      ut[uk + k] += 1;
      ut.fill(0, uk, uk + k);
    } else {
      ut.fill(0, uk, uk + m);
      ut[uk + k] = 1;
    }
  }

  // Generate V.
  for (let k = n - 1; k >= 0; k--) {
    const vk = k * n;
    if (k < nrt && e[k] !== 0) {
      for (let j = k + 1; j < nu; j++) {
        const vj = j * n;
        const t = -dot(vt, vk + k + 1, vt, vj + k + 1, n - k - 1) / vt[vk + k + 1];
        axpy(t, vt, vk + k + 1, vt, vj + k + 1, n - k - 1);
      }
    }
    vt.fill(0, vk, vk + n);
    vt[vk + k] = 1;
  }

  // Implicit-shift QR on the bidiagonal.
  const pp = p - 1;
  let iter = 0;
  const eps = 2 ** -52;
  const tiny = 2 ** -966;
  const csV = new Float64Array(n);
  const snV = new Float64Array(n);
  const csU = new Float64Array(n);
  const snU = new Float64Array(n);
  while (p > 0) {
    if (iter > MAX_SWEEPS) throw new Error(`svd: QR iteration did not converge (${m}×${n})`);
    // Find the largest k < p − 1 with e[k] negligible (−1 if none).
    let k = p - 2;
    for (; k >= 0; k--) {
      if (Math.abs(e[k]) <= tiny + eps * (Math.abs(s[k]) + Math.abs(s[k + 1]))) {
        e[k] = 0;
        break;
      }
    }
    // kase 1: s[p−1] negligible; 2: s[k] negligible; 3: QR step; 4: converged.
    let kase: number;
    if (k === p - 2) kase = 4;
    else {
      let ks = p - 1;
      for (; ks > k; ks--) {
        const t = (ks !== p ? Math.abs(e[ks]) : 0) + (ks !== k + 1 ? Math.abs(e[ks - 1]) : 0);
        if (Math.abs(s[ks]) <= tiny + eps * t) {
          s[ks] = 0;
          break;
        }
      }
      if (ks === k) kase = 3;
      else if (ks === p - 1) kase = 1;
      else {
        kase = 2;
        k = ks;
      }
    }
    k++;

    if (kase === 1) {
      // Deflate negligible s[p−1].
      let f = e[p - 2];
      e[p - 2] = 0;
      for (let j = p - 2; j >= k; j--) {
        const t = hypot(s[j], f);
        const cs = s[j] / t;
        const sn = f / t;
        s[j] = t;
        if (j !== k) {
          f = -sn * e[j - 1];
          e[j - 1] = cs * e[j - 1];
        }
        rotate(vt, j * n, (p - 1) * n, n, cs, sn);
      }
    } else if (kase === 2) {
      // Split at negligible s[k − 1].
      let f = e[k - 1];
      e[k - 1] = 0;
      for (let j = k; j < p; j++) {
        const t = hypot(s[j], f);
        const cs = s[j] / t;
        const sn = f / t;
        s[j] = t;
        f = -sn * e[j];
        e[j] = cs * e[j];
        rotate(ut, j * m, (k - 1) * m, m, cs, sn);
      }
    } else if (kase === 3) {
      // One QR step, with the Wilkinson-like shift from the trailing 2×2.
      const scl = Math.max(
        Math.abs(s[p - 1]),
        Math.abs(s[p - 2]),
        Math.abs(e[p - 2]),
        Math.abs(s[k]),
        Math.abs(e[k]),
      );
      const sp = s[p - 1] / scl;
      const spm1 = s[p - 2] / scl;
      const epm1 = e[p - 2] / scl;
      const sk = s[k] / scl;
      const ek = e[k] / scl;
      const b = ((spm1 + sp) * (spm1 - sp) + epm1 * epm1) / 2;
      const c = sp * epm1 * (sp * epm1);
      let shift = 0;
      if (b !== 0 || c !== 0) {
        shift = Math.sqrt(b * b + c);
        if (b < 0) shift = -shift;
        shift = c / (b + shift);
      }
      let f = (sk + sp) * (sk - sp) + shift;
      let g = sk * ek;
      for (let j = k; j < p - 1; j++) {
        let t = hypot(f, g);
        let cs = f / t;
        let sn = g / t;
        if (j !== k) e[j - 1] = t;
        f = cs * s[j] + sn * e[j];
        e[j] = cs * e[j] - sn * s[j];
        g = sn * s[j + 1];
        s[j + 1] = cs * s[j + 1];
        csV[j] = cs;
        snV[j] = sn;
        t = hypot(f, g);
        cs = f / t;
        sn = g / t;
        s[j] = t;
        f = cs * e[j] + sn * s[j + 1];
        s[j + 1] = -sn * e[j] + cs * s[j + 1];
        g = sn * e[j + 1];
        e[j + 1] = cs * e[j + 1];
        csU[j] = cs;
        snU[j] = sn;
      }
      // j < p − 1 ≤ n − 1 ≤ m − 1, so every U rotation of the chase applies.
      applyChain(vt, n, k, p - 1, csV, snV);
      applyChain(ut, m, k, p - 1, csU, snU);
      e[p - 2] = f;
      iter++;
    } else {
      // Converged: make s[k] non-negative, then bubble it into descending order.
      if (s[k] <= 0) {
        s[k] = s[k] < 0 ? -s[k] : 0;
        const vk = k * n;
        for (let i = 0; i <= pp; i++) vt[vk + i] = -vt[vk + i];
      }
      while (k < pp && s[k] < s[k + 1]) {
        const t = s[k];
        s[k] = s[k + 1];
        s[k + 1] = t;
        swapRows(vt, k * n, (k + 1) * n, n);
        swapRows(ut, k * m, (k + 1) * m, m);
        k++;
      }
      iter = 0;
      p--;
    }
  }
}

/** Plane rotation of rows `a` and `b` (length `len`): `a ← cs·a + sn·b`, `b ← −sn·a + cs·b`. */
function rotate(x: Float64Array, a: number, b: number, len: number, cs: number, sn: number): void {
  for (let i = 0; i < len; i++) {
    const xa = x[a + i];
    const xb = x[b + i];
    x[a + i] = cs * xa + sn * xb;
    x[b + i] = cs * xb - sn * xa;
  }
}

/**
 * Applies a QR chase's rotations to the rows of `x` (row length `len`), in
 * order `j = first, …, last−1`: rows `(j, j+1) ← (c·r_j + s·r_{j+1}, c·r_{j+1} − s·r_j)`.
 * Row `j` is, at each step, the output of the previous rotation, so it is
 * carried in registers, eight columns at a time: each entry is loaded and
 * stored once per rotation instead of twice.
 */
function applyChain(
  x: Float64Array,
  len: number,
  first: number,
  last: number,
  cs: Float64Array,
  sn: Float64Array,
): void {
  // Windows of CHAIN_WINDOW rotations keep the rows they touch in cache while
  // every column chunk passes through; a window's carried row ends up stored
  // in its last row, which is exactly where the next window picks it up.
  for (let j0 = first; j0 < last; j0 += CHAIN_WINDOW) {
    chainWindow(x, len, j0, Math.min(j0 + CHAIN_WINDOW, last), cs, sn);
  }
}

/** Rotations of a chase for rows `j0 … j1` (see `applyChain`). */
function chainWindow(
  x: Float64Array,
  len: number,
  first: number,
  last: number,
  cs: Float64Array,
  sn: Float64Array,
): void {
  let c0 = 0;
  for (; c0 + 7 < len; c0 += 8) {
    let o = first * len + c0;
    let x0 = x[o];
    let x1 = x[o + 1];
    let x2 = x[o + 2];
    let x3 = x[o + 3];
    let x4 = x[o + 4];
    let x5 = x[o + 5];
    let x6 = x[o + 6];
    let x7 = x[o + 7];
    for (let j = first; j < last; j++) {
      const c = cs[j];
      const s = sn[j];
      const a = j * len + c0;
      const b = a + len;
      let y = x[b];
      x[a] = c * x0 + s * y;
      x0 = c * y - s * x0;
      y = x[b + 1];
      x[a + 1] = c * x1 + s * y;
      x1 = c * y - s * x1;
      y = x[b + 2];
      x[a + 2] = c * x2 + s * y;
      x2 = c * y - s * x2;
      y = x[b + 3];
      x[a + 3] = c * x3 + s * y;
      x3 = c * y - s * x3;
      y = x[b + 4];
      x[a + 4] = c * x4 + s * y;
      x4 = c * y - s * x4;
      y = x[b + 5];
      x[a + 5] = c * x5 + s * y;
      x5 = c * y - s * x5;
      y = x[b + 6];
      x[a + 6] = c * x6 + s * y;
      x6 = c * y - s * x6;
      y = x[b + 7];
      x[a + 7] = c * x7 + s * y;
      x7 = c * y - s * x7;
    }
    o = last * len + c0;
    x[o] = x0;
    x[o + 1] = x1;
    x[o + 2] = x2;
    x[o + 3] = x3;
    x[o + 4] = x4;
    x[o + 5] = x5;
    x[o + 6] = x6;
    x[o + 7] = x7;
  }
  for (; c0 < len; c0++) {
    let x0 = x[first * len + c0];
    for (let j = first; j < last; j++) {
      const a = j * len + c0;
      const y = x[a + len];
      x[a] = cs[j] * x0 + sn[j] * y;
      x0 = cs[j] * y - sn[j] * x0;
    }
    x[last * len + c0] = x0;
  }
}

function swapRows(x: Float64Array, a: number, b: number, len: number): void {
  for (let i = 0; i < len; i++) {
    const t = x[a + i];
    x[a + i] = x[b + i];
    x[b + i] = t;
  }
}
