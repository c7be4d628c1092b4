import assert from "node:assert/strict";
import { appendFile, mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { parseSafetensors } from "../peft/safetensors.ts";
import { openUpdateReader } from "../store/update-reader.ts";
import { settled } from "../testing/settled.ts";
import {
  type ContentChecker,
  checkInline,
  createContentCheckPool,
  inlineContentChecker,
} from "./content-check-pool.ts";
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

/**
 * An update written to `name` in pieces while `checker` checks it as it
 * grows: resolves with the check's result, the expected (inline) result
 * of the whole file, and whether the check had ended before the last piece.
 */
async function checkWhileWriting(
  checker: ContentChecker,
  name: string,
  patch?: (bytes: Uint8Array) => void,
  renameBeforeEnd = false,
) {
  const whole = await stored(name, patch);
  const expected = await checkInline(whole.input).catch((e: unknown) => e);
  const tensors = whole.input.reader.tensors;
  await whole.close();
  const { configText, safetensors } = encodeTestAdapter({ dtype: "BF16" });
  patch?.(safetensors);
  const path = join(dir, `${name}.partial`);
  const first = [...tensors.values()][0].offset; // the header and nothing more
  await writeFile(path, safetensors.subarray(0, first));
  const check = await checker.begin({
    federation,
    clientId: "bob",
    configJson: configText,
    path,
    tensors,
    available: first,
  });
  const half = Math.floor((first + safetensors.length) / 2);
  await appendFile(path, safetensors.subarray(first, half));
  check.advance(half);
  const endedEarly = await settled(check.result, 50);
  let at = path;
  if (renameBeforeEnd) {
    at = join(dir, `${name}.accepted`);
    await rename(path, at); // as the store does at commit
  }
  await appendFile(at, safetensors.subarray(half));
  check.advance(safetensors.length);
  const result = await check.result.catch((e: unknown) => e);
  return { result, expected, endedEarly };
}

for (const [label, checker] of [
  ["a content-check thread", () => pool],
  ["the calling thread", () => inlineContentChecker],
] as const) {
  test(`${label} checks an update as it is written, and ends only once every byte is`, async () => {
    const r = await checkWhileWriting(checker(), `growing-${label.length}`);
    assert.equal(r.endedEarly, false);
    assert.deepEqual(r.result, r.expected);
    assert.ok(Object.keys(r.result as object).length > 0);
  });

  test(`${label} refuses a growing update as it refuses the stored one`, async () => {
    const name = "base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight";
    const r = await checkWhileWriting(checker(), `growing-bad-${label.length}`, (bytes) => {
      const t = parseSafetensors(bytes, "x").tensors.get(name)!;
      new DataView(t.bytes.buffer, t.bytes.byteOffset).setUint16(2 * 5, 0x7fc0, true); // NaN
    });
    assert.ok(r.result instanceof InvalidUpdateError && r.expected instanceof InvalidUpdateError);
    assert.equal(r.result.message, r.expected.message);
    assert.equal(r.result.tensor, name);
  });
}

test("a growing check reads on through the store's rename at commit", async () => {
  const r = await checkWhileWriting(pool, "renamed", undefined, true);
  assert.deepEqual(r.result, r.expected);
});

test("a cancelled growing check rejects, and its thread goes on checking", async () => {
  const u = await stored("cancelled.safetensors");
  try {
    const first = [...u.input.reader.tensors.values()][0].offset;
    const check = await pool.begin({
      federation,
      clientId: "bob",
      configJson: u.input.configJson,
      path: u.input.reader.path!,
      tensors: u.input.reader.tensors,
      available: first,
    });
    check.cancel("the upload was cut");
    await assert.rejects(check.result, /the upload was cut/);
    assert.deepEqual(await pool.check(u.input), await checkInline(u.input));
  } finally {
    await u.close();
  }
});
