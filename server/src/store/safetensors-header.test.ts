import assert from "node:assert/strict";
import { open, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { AdapterFormatError, parseSafetensors } from "../peft/index.ts";
import { readSafetensorsHeader } from "./safetensors-header.ts";
import { tempDir, updateBytes } from "./testing/fixtures.ts";

let dir = "";
let remove: () => Promise<void> = async () => undefined;
before(async () => {
  ({ dir, remove } = await tempDir());
});
after(() => remove());

async function headerOf(bytes: Uint8Array, name: string) {
  const path = join(dir, name);
  await writeFile(path, bytes);
  const handle = await open(path, "r");
  try {
    return await readSafetensorsHeader(handle, bytes.length, name);
  } finally {
    await handle.close();
  }
}

function withHeader(header: object, dataBytes: number): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  return out;
}

test("the header read from disk agrees with parseSafetensors", async () => {
  const bytes = updateBytes(21);
  const header = await headerOf(bytes, "ok.safetensors");
  const full = parseSafetensors(bytes, "ok");
  assert.deepEqual(header.metadata, full.metadata);
  for (const [name, t] of full.tensors) {
    const info = header.tensors.get(name)!;
    assert.deepEqual([info.dtype, [...info.shape]], [t.dtype, t.shape]);
    assert.ok(
      Buffer.from(bytes.subarray(info.offset, info.offset + info.byteLength)).equals(Buffer.from(t.bytes)),
    );
  }
});

test("malformed headers are AdapterFormatErrors naming the file", async () => {
  const cases: [string, Uint8Array, RegExp][] = [
    ["short", new Uint8Array(4), /shorter than the 8-byte header length/],
    ["past-end", updateBytes(1).subarray(0, 40), /runs past the end/],
    ["not-json", withHeader({}, 0).fill(0x41, 8), /not valid UTF-8 JSON/],
    ["dtype", withHeader({ t: { dtype: "Q4", shape: [1], data_offsets: [0, 1] } }, 1), /unknown dtype "Q4"/],
    ["size", withHeader({ t: { dtype: "F32", shape: [2], data_offsets: [0, 4] } }, 4), /expected 8 for F32/],
    [
      "range",
      withHeader({ t: { dtype: "U8", shape: [8], data_offsets: [0, 8] } }, 4),
      /out of range: the data buffer is 4 bytes/,
    ],
    [
      "gap",
      withHeader({ t: { dtype: "U8", shape: [2], data_offsets: [2, 4] } }, 4),
      /gap of 2 bytes before tensor "t"/,
    ],
    [
      "trailing",
      withHeader({ t: { dtype: "U8", shape: [2], data_offsets: [0, 2] } }, 4),
      /2 trailing bytes after the last tensor/,
    ],
    ["metadata", withHeader({ __metadata__: { a: 1 } }, 0), /__metadata__ value of "a"/],
  ];
  for (const [name, bytes, pattern] of cases) {
    await assert.rejects(headerOf(bytes, name), (err: unknown) => {
      assert.ok(err instanceof AdapterFormatError, `${name}: ${String(err)}`);
      assert.equal(err.file, name);
      assert.match(err.message, pattern, name);
      return true;
    });
  }
});
