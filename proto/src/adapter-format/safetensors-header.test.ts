import assert from "node:assert/strict";
import { test } from "node:test";
import {
  parseSafetensorsLayout,
  readSafetensorsLayout,
  safetensorsHeaderLength,
} from "./safetensors-header.ts";

/** A file of one F32 [2] tensor whose header JSON text is `json`. */
function file(json: string | Uint8Array): Uint8Array {
  const header = typeof json === "string" ? new TextEncoder().encode(json) : json;
  const out = new Uint8Array(8 + header.length + 8);
  new DataView(out.buffer).setBigUint64(0, BigInt(header.length), true);
  out.set(header, 8);
  return out;
}

const parse = (bytes: Uint8Array) =>
  parseSafetensorsLayout(
    bytes.subarray(8, 8 + safetensorsHeaderLength(bytes, bytes.length, "f")),
    bytes.length,
    "f",
  );

const HEADER = '{"t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}';

test("parses a header, from bytes and through a reader", async () => {
  const bytes = file(HEADER);
  assert.deepEqual(parse(bytes).tensors.get("t"), {
    dtype: "F32",
    shape: [2],
    offset: 8 + HEADER.length,
    byteLength: 8,
  });
  const read = async (at: number, n: number) => bytes.subarray(at, at + n);
  assert.equal((await readSafetensorsLayout(read, bytes.length, "f")).tensors.size, 1);
});

test("refuses a header with a UTF-8 byte-order mark", () => {
  const bom = new Uint8Array([0xef, 0xbb, 0xbf, ...new TextEncoder().encode(HEADER)]);
  assert.throws(() => parse(file(bom)), /f: header is not valid UTF-8 JSON/);
});

test("refuses a header nested deeper than a tensor entry needs", () => {
  const deep = `{"__metadata__": {}, "t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8], "x": ${"[".repeat(5000)}${"]".repeat(5000)}}}`;
  assert.throws(() => parse(file(deep)), /f: header JSON is nested deeper than 4 levels/);
});
