import assert from "node:assert/strict";
import { test } from "node:test";
import { AdapterFormatError } from "@tributary/protocol";
import { decodeTensorF32, parseSafetensors, serializeSafetensors } from "./safetensors.ts";
import { rawSafetensors } from "./testing/fixtures.ts";

const FILE = "dir/adapter_model.safetensors";

/** Asserts `fn` throws an AdapterFormatError naming the file and matching `pattern`. */
function rejects(fn: () => unknown, pattern: RegExp, tensor?: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof AdapterFormatError, `expected AdapterFormatError, got ${String(err)}`);
    assert.equal(err.name, "AdapterFormatError");
    assert.equal(err.file, FILE);
    assert.ok(err.message.startsWith(`${FILE}: `), err.message);
    assert.match(err.message, pattern);
    if (tensor !== undefined) assert.equal(err.tensor, tensor);
    return true;
  });
}

const parse = (bytes: Uint8Array) => parseSafetensors(bytes, FILE);

/** A valid one-tensor F32 [2, 2] file with extra header fields. */
function oneTensor(info: Record<string, unknown>, dataBytes = 16): Uint8Array {
  return rawSafetensors(
    { x: { dtype: "F32", shape: [2, 2], data_offsets: [0, 16], ...info } },
    new Uint8Array(dataBytes),
  );
}

test("serialize then parse round-trips tensors, metadata and a zero-size tensor, header padded to 8", () => {
  const entries = [
    { name: "a", dtype: "F32" as const, shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, -6.5]) },
    { name: "empty", dtype: "F16" as const, shape: [0, 4], data: new Float32Array(0) },
    { name: "h", dtype: "F16" as const, shape: [3], data: new Float32Array([0.5, -1, 2048]) },
    { name: "b", dtype: "BF16" as const, shape: [1, 2], data: new Float32Array([3, -0.125]) },
  ];
  const bytes = serializeSafetensors(entries, { format: "pt", note: "ü" });
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal(n % 8, 0);
  assert.equal(bytes.length, 8 + n + 24 + 0 + 6 + 4);
  const headerText = new TextDecoder().decode(bytes.subarray(8, 8 + n));
  assert.equal(headerText.trimEnd(), JSON.stringify(JSON.parse(headerText)));
  const parsed = parse(bytes);
  assert.deepEqual(parsed.metadata, { format: "pt", note: "ü" });
  assert.deepEqual([...parsed.tensors.keys()], ["a", "empty", "h", "b"]);
  for (const e of entries) {
    const t = parsed.tensors.get(e.name)!;
    assert.equal(t.dtype, e.dtype);
    assert.deepEqual(t.shape, e.shape);
    assert.equal(t.bytes.buffer, bytes.buffer, "tensor bytes are a view, not a copy");
    assert.deepEqual([...decodeTensorF32(t, FILE, e.name)], [...e.data]);
  }
  // Contiguous in the given order.
  const header = JSON.parse(headerText);
  assert.deepEqual(header.a.data_offsets, [0, 24]);
  assert.deepEqual(header.empty.data_offsets, [24, 24]);
  assert.deepEqual(header.h.data_offsets, [24, 30]);
  assert.deepEqual(header.b.data_offsets, [30, 34]);
});

test("a file without metadata or tensors parses", () => {
  const parsed = parse(serializeSafetensors([]));
  assert.deepEqual(parsed.metadata, {});
  assert.equal(parsed.tensors.size, 0);
});

test("every dtype of the spec is accepted structurally", () => {
  const sizes: [string, number][] = [
    ["BOOL", 1],
    ["U8", 1],
    ["I8", 1],
    ["I16", 2],
    ["U16", 2],
    ["F16", 2],
    ["BF16", 2],
    ["I32", 4],
    ["U32", 4],
    ["F32", 4],
    ["I64", 8],
    ["U64", 8],
    ["F64", 8],
    ["F8_E4M3", 1],
    ["F8_E5M2", 1],
  ];
  for (const [dtype, size] of sizes) {
    const bytes = rawSafetensors(
      { t: { dtype, shape: [3], data_offsets: [0, 3 * size] } },
      new Uint8Array(3 * size),
    );
    assert.equal(parse(bytes).tensors.get("t")?.dtype, dtype);
  }
});

test("rejects a file shorter than 8 bytes", () => {
  rejects(() => parse(new Uint8Array(5)), /5 bytes, shorter than the 8-byte header length/);
});

test("rejects a header length over 100 MB", () => {
  rejects(
    () => parse(rawSafetensors({}, undefined, 100_000_001n)),
    /header length of 100000001 bytes, beyond the 100000000-byte limit/,
  );
  rejects(
    () => parse(rawSafetensors({}, undefined, 2n ** 63n)),
    /not a safetensors file: its first 8 bytes \(00 00 00 00 00 00 00 80\) would be a header length of 9223372036854775808 bytes, beyond the 100000000-byte limit/,
  );
});

test("rejects a header length past the end of the file", () => {
  rejects(
    () => parse(rawSafetensors({}, undefined, 64n)),
    /header length 64 runs past the end of the 10-byte file \(truncated\)/,
  );
});

test("rejects a header that is not JSON or not an object", () => {
  rejects(() => parse(rawSafetensors("{not json")), /header is not valid UTF-8 JSON/);
  rejects(() => parse(rawSafetensors("[1, 2]")), /header is not a JSON object/);
  rejects(() => parse(rawSafetensors("null")), /header is not a JSON object/);
  const badUtf8 = rawSafetensors('{"a":1}');
  badUtf8[10] = 0xff;
  rejects(() => parse(badUtf8), /not valid UTF-8 JSON/);
});

test("rejects a tensor entry that is not an object", () => {
  rejects(() => parse(rawSafetensors({ x: [1, 2] })), /tensor "x" is not an object/, "x");
});

test("rejects an unknown dtype", () => {
  rejects(() => parse(oneTensor({ dtype: "F128" })), /tensor "x" has unknown dtype "F128"/, "x");
  rejects(() => parse(oneTensor({ dtype: 4 })), /unknown dtype 4/, "x");
});

test("rejects a shape that is not an array of non-negative integers", () => {
  for (const shape of [[2, -2], [2, 2.5], "2x2", [2, "2"], null]) {
    rejects(
      () => parse(oneTensor({ shape })),
      /has shape .*, expected an array of non-negative integers/,
      "x",
    );
  }
});

test("rejects offsets that are not two ordered integers", () => {
  for (const data_offsets of [[0], [0, 16, 32], [16, 0], [0, 1.5], [-1, 16], "0-16"]) {
    rejects(
      () => parse(oneTensor({ data_offsets })),
      /has data_offsets .*expected \[begin, end\] integers/,
      "x",
    );
  }
});

test("rejects offsets past the data buffer", () => {
  rejects(
    () => parse(oneTensor({}, 12)),
    /data_offsets \[0, 16\] out of range: the data buffer is 12 bytes/,
    "x",
  );
});

test("rejects a byte count that does not match shape × dtype", () => {
  const bytes = rawSafetensors(
    { "x.lora_A.weight": { dtype: "F32", shape: [2, 2], data_offsets: [0, 12] } },
    new Uint8Array(12),
  );
  rejects(
    () => parse(bytes),
    /tensor "x.lora_A.weight" has 12 bytes, expected 16 for F32 \[2, 2\]/,
    "x.lora_A.weight",
  );
});

test("rejects overlapping tensors", () => {
  const bytes = rawSafetensors(
    {
      a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
      b: { dtype: "F32", shape: [2], data_offsets: [4, 12] },
    },
    new Uint8Array(12),
  );
  rejects(() => parse(bytes), /tensor "b" \[4, 12\] overlaps tensor "a" \[0, 8\]/, "b");
});

test("rejects gaps between tensors and before the first", () => {
  const gap = rawSafetensors(
    {
      a: { dtype: "F32", shape: [1], data_offsets: [0, 4] },
      b: { dtype: "F32", shape: [1], data_offsets: [8, 12] },
    },
    new Uint8Array(12),
  );
  rejects(() => parse(gap), /gap of 4 bytes before tensor "b" at data offset 4/, "b");
  const lead = rawSafetensors({ a: { dtype: "F32", shape: [1], data_offsets: [4, 8] } }, new Uint8Array(8));
  rejects(() => parse(lead), /gap of 4 bytes before tensor "a" at data offset 0/, "a");
});

test("rejects trailing bytes after the last tensor", () => {
  rejects(() => parse(oneTensor({}, 20)), /4 trailing bytes after the last tensor/);
  rejects(() => parse(rawSafetensors({}, new Uint8Array(3))), /3 trailing bytes/);
});

test("rejects non-string metadata values", () => {
  rejects(
    () => parse(rawSafetensors({ __metadata__: { format: "pt", step: 3 } })),
    /__metadata__ value of "step" is 3, expected a string/,
  );
  rejects(() => parse(rawSafetensors({ __metadata__: ["pt"] })), /__metadata__ is not an object of strings/);
});

test("decodeTensorF32 narrows F64 and rejects non-float dtypes", () => {
  const f64 = new Uint8Array(16);
  new DataView(f64.buffer).setFloat64(0, 1.25, true);
  new DataView(f64.buffer).setFloat64(8, -1e300, true);
  const parsed = parse(
    rawSafetensors(
      {
        d: { dtype: "F64", shape: [2], data_offsets: [0, 16] },
        ids: { dtype: "I64", shape: [1], data_offsets: [16, 24] },
      },
      new Uint8Array([...f64, ...new Uint8Array(8)]),
    ),
  );
  assert.deepEqual(
    [...decodeTensorF32(parsed.tensors.get("d")!, FILE, "d")],
    [1.25, Number.NEGATIVE_INFINITY],
  );
  rejects(
    () => decodeTensorF32(parsed.tensors.get("ids")!, FILE, "ids"),
    /unsupported dtype I64 for tensor "ids" \(expected F32, F16 or BF16\)/,
    "ids",
  );
});

test("serialize rejects duplicate names and data that does not match its shape", () => {
  const t = { name: "w", dtype: "F32" as const, shape: [2], data: new Float32Array(2) };
  assert.throws(() => serializeSafetensors([t, t], undefined, FILE), /duplicate or reserved tensor name "w"/);
  assert.throws(
    () => serializeSafetensors([{ ...t, shape: [3] }], undefined, FILE),
    (err: unknown) =>
      err instanceof AdapterFormatError && /has 2 values, expected shape \[3\]/.test(err.message),
  );
  // A tensor named like an Object.prototype key is a plain tensor.
  const parsed = parse(serializeSafetensors([{ ...t, name: "__proto__" }]));
  assert.deepEqual([...parsed.tensors.keys()], ["__proto__"]);
});
