import assert from "node:assert/strict";
import { test } from "node:test";
import { parseSafetensors } from "../peft/safetensors.ts";
import { InvalidUpdateError } from "./errors.ts";
import { encodeTestAdapter, schemaModules, testFederation } from "./testing/fixtures.ts";
import { validateUpdateStream } from "./update-stream-validator.ts";

const fed = testFederation();

/** The header and a counting `readTensor` over an encoded adapter. */
function staged(spec: Parameters<typeof encodeTestAdapter>[0] = {}, patch?: (bytes: Uint8Array) => void) {
  const { configText, safetensors } = encodeTestAdapter(spec);
  patch?.(safetensors);
  const parsed = parseSafetensors(safetensors, "staged");
  const reads: string[] = [];
  return {
    reads,
    run: () =>
      validateUpdateStream({
        federation: fed,
        clientId: "bob",
        configJson: configText,
        tensors: parsed.tensors,
        readTensor: async (name) => {
          reads.push(name);
          return parsed.tensors.get(name)!.bytes;
        },
      }),
  };
}

test("a conforming adapter passes, read one tensor at a time", async () => {
  const s = staged({ dtype: "BF16" });
  await s.run();
  assert.equal(s.reads.length, 4);
  assert.equal(new Set(s.reads).size, 4);
});

test("schema mismatches fail before any tensor is read", async () => {
  const s = staged({ modules: schemaModules(16) });
  await assert.rejects(s.run(), (err: unknown) => {
    assert.ok(err instanceof InvalidUpdateError);
    assert.match(err.message, /client "bob".*q_proj has rank 16, expected 1 to max_rank 8/);
    return true;
  });
  assert.deepEqual(s.reads, []);
});

test("a non-finite value names the tensor and its first index", async () => {
  const name = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight";
  const s = staged({}, (bytes) => {
    const t = parseSafetensors(bytes, "x").tensors.get(name)!;
    const view = new DataView(t.bytes.buffer, t.bytes.byteOffset);
    view.setFloat32(4 * 7, Number.POSITIVE_INFINITY, true);
    view.setFloat32(4 * 9, Number.NaN, true);
  });
  await assert.rejects(s.run(), (err: unknown) => {
    assert.ok(err instanceof InvalidUpdateError);
    assert.equal(err.tensor, name);
    assert.equal(err.module, "model.layers.0.self_attn.q_proj");
    assert.match(err.message, /tensor ".*q_proj\.lora_A\.weight" has non-finite value Infinity at index 7/);
    return true;
  });
});

/** `staged` with values of one tensor set: `values` maps an index to its value. */
function stagedWith(name: string, values: ReadonlyMap<number, number>) {
  return staged({}, (bytes) => {
    const t = parseSafetensors(bytes, "x").tensors.get(name)!;
    const view = new DataView(t.bytes.buffer, t.bytes.byteOffset);
    for (const [i, v] of values) view.setFloat32(4 * i, v, true);
  });
}

test("a value beyond ±65504 is refused, naming the tensor and its first index", async () => {
  const name = "base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight";
  await assert.rejects(stagedWith(name, new Map([[3, -70000]])).run(), (err: unknown) => {
    assert.ok(err instanceof InvalidUpdateError);
    assert.equal(err.tensor, name);
    assert.match(err.message, /tensor ".*v_proj\.lora_B\.weight" has value -70000 at index 3, beyond ±65504/);
    return true;
  });
});

test("values within ±65504 whose squares sum past 65504² are accepted (the Gram diagonal is only a first test)", async () => {
  const name = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight";
  // Row 0 of A: the diagonal entry of AAᵀ is 3 · 65000² > 65504², yet no value is out of range.
  const modules = await stagedWith(
    name,
    new Map([
      [0, 65000],
      [1, -65000],
      [2, 65000],
    ]),
  ).run();
  assert.ok(modules.get("model.layers.0.self_attn.q_proj")!.norm > 0);
});

test("a tensor read back with the wrong length is refused", async () => {
  const { configText, safetensors } = encodeTestAdapter();
  const { tensors } = parseSafetensors(safetensors, "x");
  await assert.rejects(
    validateUpdateStream({
      federation: fed,
      clientId: "bob",
      configJson: configText,
      tensors,
      readTensor: async (name) => tensors.get(name)!.bytes.subarray(2),
    }),
    /has \d+ bytes, expected \d+ for F32 \[/,
  );
});
