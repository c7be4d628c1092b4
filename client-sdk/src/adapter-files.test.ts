import assert from "node:assert/strict";
import { mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { readAdapter, sha256Hex, verifyAdapter, writeAdapter } from "./adapter-files.ts";
import { adapterSchema } from "./adapter-schema.ts";
import { IntegrityError, InvalidUpdateError, TributaryError } from "./errors.ts";

/** A minimal safetensors file holding `tensors` (zero-filled F32 data). */
function safetensorsOf(tensors: Record<string, number[]>, dtype = "F32"): Uint8Array {
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const [name, shape] of Object.entries(tensors)) {
    const bytes = shape.reduce((a, b) => a * b, 1) * (dtype === "F32" ? 4 : 2);
    header[name] = { dtype, shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = Buffer.from(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  return out;
}

describe("verifyAdapter", () => {
  const bytes = new Uint8Array([1, 2, 3, 4, 5]);

  it("accepts bytes that hash to the content hash", () => {
    verifyAdapter(bytes, sha256Hex(bytes), "test");
    verifyAdapter(bytes, sha256Hex(bytes).toUpperCase(), "test");
  });

  it("rejects tampered bytes with an IntegrityError naming both hashes", () => {
    const want = sha256Hex(bytes);
    const tampered = bytes.slice();
    tampered[2] ^= 0xff;
    assert.throws(
      () => verifyAdapter(tampered, want, "round 3 over gRPC"),
      (err: unknown) => {
        assert.ok(err instanceof IntegrityError);
        assert.ok(err instanceof TributaryError);
        assert.equal(err.code, "INTEGRITY");
        assert.equal(err.expected, want);
        assert.equal(err.actual, sha256Hex(tampered));
        assert.match(err.message, /round 3 over gRPC: .* have sha256 [0-9a-f]{64}, expected [0-9a-f]{64}/);
        return true;
      },
    );
  });
});

describe("writeAdapter / readAdapter", () => {
  it("round-trips a PEFT directory and leaves no temporary files", async () => {
    const root = await mkdtemp(join(tmpdir(), "tributary-sdk-"));
    try {
      const dir = join(root, "nested", "global");
      const adapter = { configJson: '{"r": 4}', safetensors: new Uint8Array([9, 8, 7]) };
      await writeAdapter(dir, adapter);
      await writeAdapter(dir, { ...adapter, safetensors: new Uint8Array([6, 5]) });
      const back = await readAdapter(dir);
      assert.equal(back.configJson, adapter.configJson);
      assert.deepEqual([...back.safetensors], [6, 5]);
      assert.deepEqual((await readdir(dir)).sort(), ["adapter_config.json", "adapter_model.safetensors"]);
      assert.equal((await stat(join(dir, "adapter_model.safetensors"))).size, 2);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe("adapterSchema", () => {
  it("reads base model, module shapes, ranks and dtype", () => {
    const safetensors = safetensorsOf(
      {
        "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight": [4, 64],
        "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight": [64, 4],
        "base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight": [8, 64],
        "base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight": [16, 8],
      },
      "BF16",
    );
    const schema = adapterSchema({ configJson: '{"base_model_name_or_path": "m/x"}', safetensors });
    assert.deepEqual(schema, {
      baseModelId: "m/x",
      dtype: "BF16",
      modules: [
        { name: "model.layers.0.self_attn.q_proj", dIn: 64, dOut: 64, maxRank: 4 },
        { name: "model.layers.0.self_attn.v_proj", dIn: 64, dOut: 16, maxRank: 8 },
      ],
    });
  });

  it("refuses files that are not a LoRA adapter", () => {
    const safetensors = safetensorsOf({ "model.embed.weight": [4, 4] });
    assert.throws(() => adapterSchema({ configJson: "{}", safetensors }), InvalidUpdateError);
    assert.throws(
      () => adapterSchema({ configJson: "{}", safetensors: new Uint8Array(3) }),
      /shorter than the 8-byte header length/,
    );
  });
});
