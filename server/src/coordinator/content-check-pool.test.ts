import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { parseSafetensors } from "../peft/safetensors.ts";
import { openUpdateReader } from "../store/update-reader.ts";
import { type ContentChecker, checkInline, createContentCheckPool } from "./content-check-pool.ts";
import { InvalidUpdateError } from "./errors.ts";
import { encodeTestAdapter, testFederation } from "./testing/fixtures.ts";

const federation = testFederation();
let dir: string;
let pool: ContentChecker;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "content-check-"));
  pool = createContentCheckPool(1);
});
after(async () => {
  await pool.close();
  await rm(dir, { recursive: true, force: true });
});

/** An update written to a file, opened as the store opens it. */
async function stored(name: string, patch?: (bytes: Uint8Array) => void) {
  const { configText, safetensors } = encodeTestAdapter({ dtype: "BF16" });
  patch?.(safetensors);
  const path = join(dir, name);
  await writeFile(path, safetensors);
  const reader = await openUpdateReader(path, name, new Set());
  return {
    input: { federation, clientId: "bob", configJson: configText, reader },
    close: () => reader.close(),
  };
}

test("a content-check thread measures every module as the main thread does", async () => {
  const u = await stored("good.safetensors");
  try {
    const threaded = await pool.check(u.input);
    assert.deepEqual(threaded, await checkInline(u.input));
    assert.ok(Object.keys(threaded).length > 0);
  } finally {
    await u.close();
  }
});

test("a refusal on the thread is the same InvalidUpdateError, naming the client, module and tensor", async () => {
  const name = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight";
  const u = await stored("bad.safetensors", (bytes) => {
    const t = parseSafetensors(bytes, "x").tensors.get(name)!;
    // BF16: the upper half of float32 Infinity.
    new DataView(t.bytes.buffer, t.bytes.byteOffset).setUint16(2 * 3, 0x7f80, true);
  });
  try {
    const inline = await checkInline(u.input).catch((e: unknown) => e);
    await assert.rejects(pool.check(u.input), (err: unknown) => {
      assert.ok(err instanceof InvalidUpdateError && inline instanceof InvalidUpdateError);
      assert.equal(err.message, inline.message);
      assert.equal(err.clientId, "bob");
      assert.equal(err.tensor, name);
      assert.equal(err.module, "model.layers.0.self_attn.q_proj");
      assert.deepEqual(err.detail(), inline.detail());
      return true;
    });
  } finally {
    await u.close();
  }
});

test("an update not in a local file is checked on the calling thread", async () => {
  const u = await stored("memory.safetensors");
  try {
    const { path: _path, ...inMemory } = u.input.reader;
    assert.deepEqual(await pool.check({ ...u.input, reader: inMemory }), await checkInline(u.input));
  } finally {
    await u.close();
  }
});
