/**
 * The low-frequency band of FR-Merging's high-pass filter, as a real
 * orthonormal basis, so the 2-D filter stays factored.
 *
 * Filter (our reading of FREE-Merging, with the public code's oversight —
 * no `fftshift` before its centred mask — fixed): take the 2-D DFT of the
 * task vector, remove the lowest frequencies and invert. Along an axis of
 * length `m` the signed frequency of index `k` is `k` (k ≤ m/2) or `k − m`;
 * the low band is `|f| ≤ K` with `K = ⌊(√c·m − 1)/2⌋` (size `2K + 1 ≈ √c·m`,
 * none when `c = 0`). The removed region is the centred rectangle
 * `band_rows × band_cols`, ≈ a fraction `c` of all coefficients. Being a
 * product of a row band and a column band, the filter is
 * `X ↦ X − Π_r X Π_c` with `Π` the real orthogonal projections onto the
 * bands, so a LoRA update `sBA` filters to `sBA − (Π_r sB)(A Π_c)`: rank ≤ 2r.
 */
import { type F32Mat, f32, transposeF32 } from "./kernels/device-matmul.ts";

/** Half-width `K` of the low band of an axis of length `m` for cutoff `c` (−1: empty band). */
export function lowBandHalfWidth(m: number, cutoff: number): number {
  if (cutoff <= 0 || m <= 0) return -1;
  const k = Math.floor((Math.sqrt(cutoff) * m - 1) / 2);
  return Math.min(Math.max(0, k), Math.floor((m - 1) / 2));
}

/**
 * Orthonormal real basis `E` (`m × (2K+1)`) of the low band: the constant,
 * then `√(2/m)·cos(2πft/m)` and `√(2/m)·sin(2πft/m)` for `f = 1..K`;
 * `Π = E Eᵀ`. `null` when the band is empty.
 */
export function lowBandBasis(m: number, cutoff: number): F32Mat | null {
  const K = lowBandHalfWidth(m, cutoff);
  if (K < 0) return null;
  const w = 2 * K + 1;
  const e = new Float32Array(m * w);
  const c0 = 1 / Math.sqrt(m);
  const c1 = Math.sqrt(2 / m);
  for (let t = 0; t < m; t++) {
    e[t * w] = c0;
    for (let f = 1; f <= K; f++) {
      const ang = (2 * Math.PI * ((f * t) % m)) / m;
      e[t * w + 2 * f - 1] = c1 * Math.cos(ang);
      e[t * w + 2 * f] = c1 * Math.sin(ang);
    }
  }
  return f32(m, w, e);
}

/** A band basis with its transpose, both as products need them. */
export interface LowBand {
  /** `E`, `m × (2K+1)`. */
  readonly e: F32Mat;
  /** `Eᵀ`. */
  readonly eT: F32Mat;
}

const bandCache = new Map<string, LowBand | null>();
const BAND_CACHE_SIZE = 4;

/**
 * `lowBandBasis` and its transpose, memoised per thread (a merge asks for
 * the same few axis lengths for every module and client; building a
 * 4096 × 1295 basis costs ~0.3 s).
 */
export function lowBand(m: number, cutoff: number): LowBand | null {
  const key = `${m}:${lowBandHalfWidth(m, cutoff)}`;
  const hit = bandCache.get(key);
  if (hit !== undefined) {
    bandCache.delete(key); // refresh its place in the LRU order
    bandCache.set(key, hit);
    return hit;
  }
  const e = lowBandBasis(m, cutoff);
  const band = e === null ? null : { e, eT: transposeF32(e) };
  bandCache.set(key, band);
  if (bandCache.size > BAND_CACHE_SIZE) bandCache.delete(bandCache.keys().next().value!);
  return band;
}
