import assert from "node:assert/strict";
import { test } from "node:test";
import {
  decodeFloats,
  encodeFloats,
  f16BitsToNumber,
  f32BitsToBf16Bits,
  f32BitsToF16Bits,
  firstUnrepresentable,
} from "@tributary/protocol";
import { f32Bits, f32FromBits, seededRandom, u16Bytes } from "./testing/fixtures.ts";

const f16 = (x: number): number => f32BitsToF16Bits(f32Bits(x));

test("F16 encoding of known values, with ties to even, subnormals, overflow, Inf and NaN", () => {
  const cases: [number, number][] = [
    [0, 0x0000],
    [-0, 0x8000],
    [1, 0x3c00],
    [-2, 0xc000],
    [0.1, 0x2e66],
    [1 / 3, 0x3555],
    [65504, 0x7bff], // largest finite
    [65519, 0x7bff], // just below the tie with 65536
    [65520, 0x7c00], // tie: largest mantissa is odd, rounds up to Inf
    [1e6, 0x7c00],
    [-1e6, 0xfc00],
    [Number.POSITIVE_INFINITY, 0x7c00],
    [Number.NEGATIVE_INFINITY, 0xfc00],
    [1 + 2 ** -11, 0x3c00], // tie between 0x3c00 (even) and 0x3c01
    [1 + 3 * 2 ** -11, 0x3c02], // tie between 0x3c01 and 0x3c02 (even)
    [1 + 2 ** -11 + 2 ** -20, 0x3c01], // just above the tie
    [2049, 0x6800], // tie between 2048 (even) and 2050
    [2 - 2 ** -11, 0x4000], // tie that carries into the exponent
    [2 ** -14, 0x0400], // smallest normal
    [2 ** -24, 0x0001], // smallest subnormal
    [1023 * 2 ** -24, 0x03ff], // largest subnormal
    [2 ** -25, 0x0000], // tie between 0 (even) and the smallest subnormal
    [1.5 * 2 ** -25, 0x0001],
    [3 * 2 ** -25, 0x0002], // tie between 0x0001 and 0x0002 (even)
    [5 * 2 ** -25, 0x0002], // tie between 0x0002 (even) and 0x0003
    [-(2 ** -26), 0x8000],
    [(2047 / 2048) * 2 ** -14, 0x0400], // rounds up from subnormal to the smallest normal
    [1e-10, 0x0000],
  ];
  for (const [x, bits] of cases) {
    assert.equal(f16(x), bits, `${x} → 0x${f16(x).toString(16)}, expected 0x${bits.toString(16)}`);
  }
  for (const nanBits of [0x7fc00000, 0x7f800001, 0xffc00001, 0x7f802000]) {
    const h = f32BitsToF16Bits(nanBits);
    assert.ok(
      (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0,
      `NaN 0x${nanBits.toString(16)} → 0x${h.toString(16)}`,
    );
  }
});

test("F16 decoding of known bit patterns", () => {
  const cases: [number, number][] = [
    [0x0000, 0],
    [0x3c00, 1],
    [0xc000, -2],
    [0x7bff, 65504],
    [0x0001, 2 ** -24],
    [0x03ff, 1023 * 2 ** -24],
    [0x0400, 2 ** -14],
    [0x3555, 0.333251953125],
    [0x7c00, Number.POSITIVE_INFINITY],
    [0xfc00, Number.NEGATIVE_INFINITY],
  ];
  for (const [bits, x] of cases) assert.equal(f16BitsToNumber(bits), x);
  assert.ok(Object.is(f16BitsToNumber(0x8000), -0));
  assert.ok(Number.isNaN(f16BitsToNumber(0x7e00)));
  assert.ok(Number.isNaN(f16BitsToNumber(0xfc01)));
  const decoded = decodeFloats(u16Bytes([0x3c00, 0x0001, 0xfc00, 0x7e00]), "F16");
  assert.deepEqual([...decoded.subarray(0, 3)], [1, 2 ** -24, Number.NEGATIVE_INFINITY]);
  assert.ok(Number.isNaN(decoded[3]));
});

test("every F16 bit pattern survives decode then encode", () => {
  const bits = Array.from({ length: 65536 }, (_, h) => h);
  const decoded = decodeFloats(u16Bytes(bits), "F16");
  const encoded = new DataView(encodeFloats(decoded, "F16").buffer);
  for (let h = 0; h < 65536; h++) {
    const back = encoded.getUint16(2 * h, true);
    if ((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0)
      assert.ok((back & 0x7c00) === 0x7c00 && (back & 0x3ff) !== 0);
    else assert.equal(back, h, `0x${h.toString(16)} came back as 0x${back.toString(16)}`);
  }
});

test("F16 encoding is the nearest value, ties to even, on random floats", () => {
  const next = seededRandom(7);
  for (let t = 0; t < 20000; t++) {
    const x = Math.fround(next() * 2 ** Math.round(next() * 20 - 4) * (t % 3 === 0 ? 1e-4 : 1));
    const h = f16(x);
    const err = Math.abs(f16BitsToNumber(h) - x);
    for (const n of [h - 1, h + 1]) {
      if ((n & 0x7fff) >= 0x7c00 || (n & 0x8000) !== (h & 0x8000) || n < 0) continue;
      const other = Math.abs(f16BitsToNumber(n) - x);
      assert.ok(
        err < other || (err === other && (h & 1) === 0),
        `${x}: 0x${h.toString(16)} vs 0x${n.toString(16)}`,
      );
    }
  }
});

test("BF16 encoding rounds to nearest even and keeps NaN a NaN", () => {
  const cases: [number, number][] = [
    [0x3f800000, 0x3f80], // 1
    [0x3f808000, 0x3f80], // tie, even stays
    [0x3f818000, 0x3f82], // tie, odd rounds up
    [0x3f808001, 0x3f81], // above the tie
    [0xbf7fffff, 0xbf80], // carry into the exponent: -0.99999994 → -1
    [0x7f7fffff, 0x7f80], // largest F32 rounds to Inf
    [0x7f800000, 0x7f80],
    [0xff800000, 0xff80],
    [0x00010000, 0x0001], // subnormal
    [0x00008000, 0x0000], // subnormal tie to even
    [0x00018000, 0x0002],
    [0x80000000, 0x8000],
  ];
  for (const [x, bits] of cases) assert.equal(f32BitsToBf16Bits(x), bits, `0x${x.toString(16)}`);
  for (const nanBits of [0x7fc00000, 0x7f800001, 0xff800001, 0x7fffffff]) {
    const h = f32BitsToBf16Bits(nanBits);
    assert.ok(
      (h & 0x7f80) === 0x7f80 && (h & 0x7f) !== 0,
      `NaN 0x${nanBits.toString(16)} → 0x${h.toString(16)}`,
    );
  }
  const bytes = encodeFloats(new Float32Array([1, -2, f32FromBits(0x3f818000), Number.NaN]), "BF16");
  assert.deepEqual([...bytes.subarray(0, 6)], [0x80, 0x3f, 0x00, 0xc0, 0x82, 0x3f]);
  assert.ok(Number.isNaN(decodeFloats(bytes, "BF16")[3]));
});

test("BF16 decoding of known patterns, including subnormal and Inf", () => {
  const decoded = decodeFloats(u16Bytes([0x3f80, 0xc040, 0x0001, 0xff80, 0x7fc0]), "BF16");
  assert.deepEqual([...decoded.subarray(0, 4)], [1, -3, 2 ** -133, Number.NEGATIVE_INFINITY]);
  assert.ok(Number.isNaN(decoded[4]));
});

test("unaligned views decode the same as aligned ones for every dtype", () => {
  const values = new Float32Array([1.5, -0.25, 3, 1024, -7.75]);
  for (const dtype of ["F32", "F16", "BF16"] as const) {
    const bytes = encodeFloats(values, dtype);
    const padded = new Uint8Array(bytes.length + 3);
    padded.set(bytes, 1);
    const view = padded.subarray(1, 1 + bytes.length);
    assert.deepEqual([...decodeFloats(view, dtype)], [...values], dtype);
    assert.deepEqual([...decodeFloats(bytes, dtype)], [...values], dtype);
  }
  assert.throws(() => decodeFloats(new Uint8Array(3), "F16"), RangeError);
});

test("F32 encoding is byte-exact little-endian and decoding copies", () => {
  const bytes = encodeFloats(new Float32Array([1, -2]), "F32");
  assert.deepEqual([...bytes], [0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0]);
  const decoded = decodeFloats(bytes, "F32");
  bytes[3] = 0;
  assert.equal(decoded[0], 1);
});

test("firstUnrepresentable finds NaN, Inf and dtype overflow", () => {
  assert.equal(firstUnrepresentable(new Float32Array([1, 2, 3])), -1);
  assert.equal(firstUnrepresentable(new Float32Array([1, Number.NaN, Number.POSITIVE_INFINITY])), 1);
  assert.equal(firstUnrepresentable(new Float32Array([1, Number.NEGATIVE_INFINITY])), 1);
  assert.equal(firstUnrepresentable(new Float32Array([65504, 65519]), "F16"), -1);
  assert.equal(firstUnrepresentable(new Float32Array([65504, -65520]), "F16"), 1);
  assert.equal(firstUnrepresentable(new Float32Array([1e38, 3.3e38]), "BF16"), -1);
  assert.equal(firstUnrepresentable(new Float32Array([1e38, f32FromBits(0x7f7f8000)]), "BF16"), 1);
  assert.equal(firstUnrepresentable(new Float32Array([3.4e38]), "F32"), -1);
});

test("decodeFloats views handed-over aligned F32 bytes instead of copying them, and copies otherwise", () => {
  const values = new Float32Array([1.5, -2, 3.25]);
  const bytes = new Uint8Array(values.buffer.slice(0));
  const viewed = decodeFloats(bytes, "F32", true);
  assert.deepEqual([...viewed], [1.5, -2, 3.25]);
  assert.equal(viewed.buffer, bytes.buffer, "handed over: no copy");
  const copied = decodeFloats(bytes, "F32");
  assert.notEqual(copied.buffer, bytes.buffer, "not handed over: a copy");
  const odd = new Uint8Array(13);
  odd.set(bytes, 1);
  const unaligned = decodeFloats(odd.subarray(1, 13), "F32", true);
  assert.deepEqual([...unaligned], [1.5, -2, 3.25]);
  assert.notEqual(unaligned.buffer, odd.buffer, "unaligned: copied");
});
