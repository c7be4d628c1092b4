/**
 * Helpers for the PEFT tests: hand-built safetensors bytes (so malformed
 * files can be made), seeded random factors and the dense product `B · A`.
 * Not part of the public API.
 */

/** mulberry32: a small seeded generator of numbers in [-1, 1). */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 31 - 1;
  };
}

/** `n` seeded values in [-1, 1). */
export function randomArray(n: number, seed: number): Float32Array {
  const next = seededRandom(seed);
  return Float32Array.from({ length: n }, next);
}

/**
 * Row-major `B · A` for `B` (`dOut × rank`) and `A` (`rank × dIn`), scaled by `s`.
 * Reference: `M[i][j] = s · Σ_k B[i][k] · A[k][j]` in float64.
 */
export function denseProduct(b: Float32Array, a: Float32Array, rank: number, s = 1): Float64Array {
  const dOut = b.length / rank;
  const dIn = a.length / rank;
  const out = new Float64Array(dOut * dIn);
  for (let i = 0; i < dOut; i++)
    for (let k = 0; k < rank; k++) {
      const bik = s * b[i * rank + k];
      for (let j = 0; j < dIn; j++) out[i * dIn + j] += bik * a[k * dIn + j];
    }
  return out;
}

/** Largest `|x_i − y_i|` relative to the largest `|y_i|`. */
export function relativeError(x: ArrayLike<number>, y: ArrayLike<number>): number {
  if (x.length !== y.length) return Number.POSITIVE_INFINITY;
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < x.length; i++) {
    diff = Math.max(diff, Math.abs(x[i] - y[i]));
    scale = Math.max(scale, Math.abs(y[i]));
  }
  return diff / (scale || 1);
}

/**
 * A safetensors file from a header (an object, or raw JSON text) and a data
 * buffer, with the header length prefix overridable, for malformed inputs.
 */
export function rawSafetensors(
  header: unknown,
  data: Uint8Array = new Uint8Array(0),
  headerLength?: bigint,
): Uint8Array {
  const json = new TextEncoder().encode(typeof header === "string" ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, headerLength ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

/** Little-endian bytes of 16-bit patterns. */
export function u16Bytes(bits: readonly number[]): Uint8Array {
  const out = new Uint8Array(2 * bits.length);
  const view = new DataView(out.buffer);
  for (let i = 0; i < bits.length; i++) view.setUint16(2 * i, bits[i], true);
  return out;
}

/** The F32 with bit pattern `bits`. */
export function f32FromBits(bits: number): number {
  const view = new DataView(new ArrayBuffer(4));
  view.setUint32(0, bits >>> 0);
  return view.getFloat32(0);
}

/** The bit pattern of `x` rounded to F32. */
export function f32Bits(x: number): number {
  const view = new DataView(new ArrayBuffer(4));
  view.setFloat32(0, x);
  return view.getUint32(0);
}
