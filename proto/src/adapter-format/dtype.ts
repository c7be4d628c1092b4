/**
 * Float tensor encodings of PEFT adapters: little-endian F32, F16 (IEEE 754
 * binary16) and BF16 (the top half of an F32), decoded to and encoded from
 * `Float32Array`. Narrowing rounds to nearest, ties to even; NaN stays NaN and
 * F16 overflows to ±Inf. Loops read aligned typed-array views when they can
 * and fall back to `DataView` for unaligned input or a big-endian host.
 */

/** Float dtypes an adapter's tensors may be stored in. */
export type TensorDType = "F32" | "F16" | "BF16";

/** Bytes per element of each `TensorDType`. */
export const DTYPE_BYTES: Readonly<Record<TensorDType, number>> = { F32: 4, F16: 2, BF16: 2 };

/** Whether `s` names a `TensorDType`. */
export function isTensorDType(s: string): s is TensorDType {
  return s === "F32" || s === "F16" || s === "BF16";
}

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Big-endian scratch word for the slow (`DataView`) paths. */
const scratch = new DataView(new ArrayBuffer(4));

let f16Table: Float32Array | undefined;

/** All 65536 F16 bit patterns decoded, built on first use (256 KiB). */
function f16Lookup(): Float32Array {
  if (f16Table === undefined) {
    f16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16BitsToNumber(h);
  }
  return f16Table;
}

/**
 * The value of an F16 bit pattern.
 * Reference: `(-1)^s · 2^(e-15) · (1 + m/1024)`, or `2^-14 · m/1024` when `e = 0`.
 */
export function f16BitsToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant === 0 ? sign * Number.POSITIVE_INFINITY : Number.NaN;
  return sign * (1024 + mant) * 2 ** (exp - 25);
}

/**
 * F16 bits of the F32 with bits `x`, rounded to nearest, ties to even.
 * NaN keeps its sign and top payload bits (and stays a NaN); overflow gives ±Inf.
 */
export function f32BitsToF16Bits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant === 0 ? 0 : 0x200 | (mant >>> 13));
  const e = exp - 112; // re-biased exponent: exp - 127 + 15
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal F16 (or zero): shift the mantissa with its implicit bit into place.
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rem = mant & ((1 << shift) - 1);
    let h = mant >>> shift;
    if (rem > half || (rem === half && (h & 1) === 1)) h++;
    return sign | h;
  }
  // A carry out of the mantissa correctly bumps the exponent (up to Inf).
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h++;
  return sign | h;
}

/** BF16 bits of the F32 with bits `x`, rounded to nearest, ties to even; NaN stays a (quiet) NaN. */
export function f32BitsToBf16Bits(x: number): number {
  if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) return ((x >>> 16) | 0x40) & 0xffff;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/** A copy of `bytes` starting at a fresh, aligned buffer. */
function alignedCopy(bytes: Uint8Array): ArrayBuffer {
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  return copy.buffer;
}

/**
 * Decodes `bytes` (little-endian, any alignment) of the given dtype into a new
 * `Float32Array`. `bytes.length` must be a multiple of the element size.
 * With `handedOver` (the caller gives `bytes` away and never touches them
 * again, as a fresh file read), aligned F32 bytes are viewed, not copied.
 *
 * @example
 * decodeFloats(new Uint8Array([0x00, 0x3c]), "F16"); // Float32Array [1]
 */
export function decodeFloats(bytes: Uint8Array, dtype: TensorDType, handedOver = false): Float32Array {
  const width = DTYPE_BYTES[dtype];
  if (bytes.length % width !== 0) {
    throw new RangeError(`${bytes.length} bytes is not a whole number of ${dtype} values`);
  }
  const n = bytes.length / width;
  if (dtype === "F32") {
    if (LITTLE_ENDIAN_HOST && handedOver && bytes.byteOffset % 4 === 0) {
      return new Float32Array(bytes.buffer, bytes.byteOffset, n);
    }
    if (LITTLE_ENDIAN_HOST) return new Float32Array(alignedCopy(bytes));
    const out = new Float32Array(n);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < n; i++) out[i] = view.getFloat32(4 * i, true);
    return out;
  }
  const out = new Float32Array(n);
  const aligned = LITTLE_ENDIAN_HOST && bytes.byteOffset % 2 === 0;
  const halves = aligned ? new Uint16Array(bytes.buffer, bytes.byteOffset, n) : undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dtype === "F16") {
    const table = f16Lookup();
    if (halves !== undefined) for (let i = 0; i < n; i++) out[i] = table[halves[i]];
    else for (let i = 0; i < n; i++) out[i] = table[view.getUint16(2 * i, true)];
    return out;
  }
  // BF16: the value's bits are the top 16 bits of an F32.
  if (halves !== undefined) {
    const bits = new Uint32Array(out.buffer);
    for (let i = 0; i < n; i++) bits[i] = halves[i] << 16;
  } else {
    for (let i = 0; i < n; i++) out[i] = bf16ToNumber(view.getUint16(2 * i, true));
  }
  return out;
}

function bf16ToNumber(h: number): number {
  scratch.setUint32(0, h << 16);
  return scratch.getFloat32(0);
}

/**
 * Encodes `data` as little-endian bytes of the given dtype (a new buffer),
 * rounding to nearest, ties to even, when narrowing.
 *
 * @example
 * encodeFloats(new Float32Array([1]), "BF16"); // Uint8Array [0x80, 0x3f]
 */
export function encodeFloats(data: Float32Array, dtype: TensorDType): Uint8Array {
  const n = data.length;
  if (dtype === "F32") {
    const out = new Uint8Array(4 * n);
    if (LITTLE_ENDIAN_HOST) {
      out.set(new Uint8Array(data.buffer, data.byteOffset, 4 * n));
    } else {
      const view = new DataView(out.buffer);
      for (let i = 0; i < n; i++) view.setFloat32(4 * i, data[i], true);
    }
    return out;
  }
  const out = new Uint8Array(2 * n);
  const narrow = dtype === "F16" ? f32BitsToF16Bits : f32BitsToBf16Bits;
  if (LITTLE_ENDIAN_HOST) {
    const bits = new Uint32Array(data.buffer, data.byteOffset, n);
    const halves = new Uint16Array(out.buffer);
    if (dtype === "BF16") for (let i = 0; i < n; i++) halves[i] = f32BitsToBf16Bits(bits[i]);
    else for (let i = 0; i < n; i++) halves[i] = f32BitsToF16Bits(bits[i]);
  } else {
    const view = new DataView(out.buffer);
    for (let i = 0; i < n; i++) {
      scratch.setFloat32(0, data[i]);
      view.setUint16(2 * i, narrow(scratch.getUint32(0)), true);
    }
  }
  return out;
}

/**
 * Magnitudes from which encoding rounds to ±Inf: halfway between the largest
 * finite value and the next power of two (the tie rounds up, the largest
 * finite mantissa being odd).
 */
const OVERFLOW_AT: Readonly<Record<TensorDType, number>> = {
  F32: Number.POSITIVE_INFINITY,
  F16: 65520,
  BF16: 2 ** 128 - 2 ** 119,
};

/**
 * Index of the first value of `data` that is NaN, ±Inf or would round to ±Inf
 * when encoded as `dtype`; -1 when there is none.
 */
export function firstUnrepresentable(data: Float32Array, dtype: TensorDType = "F32"): number {
  const limit = OVERFLOW_AT[dtype];
  for (let i = 0; i < data.length; i++) {
    if (!(Math.abs(data[i]) < limit)) return i;
  }
  return -1;
}
