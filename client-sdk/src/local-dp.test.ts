import assert from "node:assert/strict";
import { test } from "node:test";
import {
  decodeFloats,
  encodeFloats,
  epsilonOf,
  parseSafetensorsLayout,
  safetensorsHeaderLength,
  type TensorDType,
} from "@tributary/protocol";
import type { AdapterFiles } from "./adapter-files.ts";
import { localEpsilon, privatizeAdapter } from "./local-dp.ts";

/** A safetensors file of the given tensors (row-major values), as save_pretrained lays it out. */
function safetensors(
  tensors: { name: string; dtype: TensorDType; shape: number[]; values: number[] }[],
): Uint8Array {
  const header: Record<string, unknown> = {};
  const blobs: Uint8Array[] = [];
  let at = 0;
  for (const t of tensors) {
    const bytes = encodeFloats(Float32Array.from(t.values), t.dtype);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [at, at + bytes.length] };
    blobs.push(bytes);
    at += bytes.length;
  }
  let json = JSON.stringify(header);
  while ((8 + json.length) % 8 !== 0) json += " ";
  const head = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + head.length + at);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  let p = 8 + head.length;
  for (const b of blobs) {
    out.set(b, p);
    p += b.length;
  }
  return out;
}

function tensorsOf(files: AdapterFiles): Map<string, Float32Array> {
  const b = files.safetensors;
  const n = safetensorsHeaderLength(b, b.length, "t");
  const layout = parseSafetensorsLayout(b.subarray(8, 8 + n), b.length, "t");
  return new Map(
    [...layout.tensors].map(([name, t]) => [
      name,
      decodeFloats(b.subarray(t.offset, t.offset + t.byteLength), t.dtype as TensorDType),
    ]),
  );
}

const A = "base_model.model.layers.0.q_proj.lora_A.weight";
const B = "base_model.model.layers.0.q_proj.lora_B.weight";
const files = (n: number, dtypeB: TensorDType = "F32"): AdapterFiles => ({
  configJson: "{}",
  safetensors: safetensors([
    {
      name: A,
      dtype: "F32",
      shape: [4, n / 4],
      values: Array.from({ length: n }, (_, i) => Math.sin(i) * 0.5),
    },
    {
      name: B,
      dtype: dtypeB,
      shape: [n / 4, 4],
      values: Array.from({ length: n }, (_, i) => Math.cos(i) * 0.25),
    },
  ]),
});

test("clips the update as one vector exactly, keeping the header and every dtype", () => {
  const input = files(64);
  const before = tensorsOf(input);
  let norm2 = 0;
  for (const v of before.values()) for (const x of v) norm2 += x * x;
  const { files: out, report } = privatizeAdapter(input, { clipNorm: 1, noiseMultiplier: 0 });
  assert.ok(Math.abs(report.norm - Math.sqrt(norm2)) < 1e-9);
  assert.equal(report.clipped, true);
  assert.equal(report.sigma, 0);
  const f = 1 / Math.sqrt(norm2);
  for (const [name, v] of tensorsOf(out)) {
    const was = before.get(name)!;
    for (const [i, x] of v.entries()) assert.equal(x, Math.fround(was[i] * f), `${name}[${i}]`);
  }
  // Same layout: the header bytes are untouched.
  const n = safetensorsHeaderLength(input.safetensors, input.safetensors.length, "t");
  assert.deepEqual(out.safetensors.subarray(0, 8 + n), input.safetensors.subarray(0, 8 + n));
  // Under the clip norm nothing moves.
  const small = privatizeAdapter(input, { clipNorm: 1e6, noiseMultiplier: 0 });
  assert.deepEqual(small.files.safetensors, input.safetensors);
  assert.equal(small.report.clipped, false);
});

test("adds N(0, (z·C)²) noise: its measured standard deviation is z·C (fixed key, 2 % tolerance)", () => {
  const input = files(40_000, "BF16");
  const clip = 1e6; // no clipping: the difference is the noise alone
  const { files: out, report } = privatizeAdapter(
    input,
    { clipNorm: clip, noiseMultiplier: 1e-6 },
    "7".repeat(64),
  );
  assert.equal(report.sigma, 1);
  const a0 = tensorsOf(input).get(A)!;
  const a1 = tensorsOf(out).get(A)!;
  let s = 0;
  let s2 = 0;
  for (let i = 0; i < a0.length; i++) {
    const d = a1[i] - a0[i];
    s += d;
    s2 += d * d;
  }
  const mean = s / a0.length;
  const std = Math.sqrt(s2 / a0.length - mean * mean);
  assert.ok(Math.abs(mean) < 0.02 && Math.abs(std - 1) < 0.02, `mean ${mean}, std ${std}`);
  // A fresh key each call by default: two submits never send the same noise.
  const again = privatizeAdapter(input, { clipNorm: clip, noiseMultiplier: 1e-6 });
  const third = privatizeAdapter(input, { clipNorm: clip, noiseMultiplier: 1e-6 });
  assert.notDeepEqual(again.files.safetensors, third.files.safetensors);
  assert.throws(() => privatizeAdapter(input, { clipNorm: 0, noiseMultiplier: 1 }), /clipNorm must be > 0/);
});

test("the client's ε is the coordinator's accountant at sampling rate 1", () => {
  assert.equal(localEpsilon([], 1e-5), 0);
  const e = localEpsilon([{ noiseMultiplier: 1.5, submissions: 10 }], 1e-5);
  assert.equal(e, epsilonOf({ q: 1, noiseMultiplier: 1.5, steps: 10 }, 1e-5).epsilon);
  // Mixed noise levels compose (more than either alone, no more than their sum).
  const mixed = localEpsilon(
    [
      { noiseMultiplier: 1.5, submissions: 10 },
      { noiseMultiplier: 3, submissions: 5 },
    ],
    1e-5,
  );
  const other = localEpsilon([{ noiseMultiplier: 3, submissions: 5 }], 1e-5);
  assert.ok(mixed > e && mixed < e + other);
});
