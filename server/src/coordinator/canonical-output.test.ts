import assert from "node:assert/strict";
import { test } from "node:test";
import { decodeAdapter, encodeAdapter } from "../peft/index.ts";
import { canonicalConfig, canonicalDtype, canonicalLayout } from "./canonical-output.ts";
import { testFederation } from "./testing/fixtures.ts";

test("the merged adapter's config and layout come from the schema alone", () => {
  const f = testFederation();
  const config = canonicalConfig(f);
  assert.equal(config.base_model_name_or_path, f.schema.baseModel);
  assert.equal(config.peft_type, "LORA");
  assert.deepEqual(config.modules_to_save, null);
  assert.ok(!("layers_to_transform" in config));
  // lora_alpha carries the (median client) scaling at the config's rank.
  assert.equal(canonicalConfig(f, 2).lora_alpha, 2 * (config.r as number));
  const layout = canonicalLayout(f);
  assert.deepEqual(
    [...layout.modules.keys()],
    f.schema.modules.map((m) => m.name),
  );
  for (const m of f.schema.modules) {
    assert.deepEqual(layout.modules.get(m.name)?.layout, {
      kind: "linear",
      aShape: [m.dIn],
      bShape: [m.dOut],
      prefix: "base_model.model.",
      adapterName: "",
    });
  }
  assert.equal(canonicalDtype(f), f.schema.dtypes.includes("F32") ? "F32" : f.schema.dtypes[0]);
  assert.equal(canonicalDtype({ ...f, schema: { ...f.schema, dtypes: ["BF16"] } }), "BF16");
});

test("whatever the merged ranks, every module is written at the canonical scaling (rank variants train as the clients did)", () => {
  const f = testFederation();
  const layout = canonicalLayout(f, 2);
  const [m0, m1] = f.schema.modules;
  const module = (m: (typeof f.schema.modules)[number], rank: number) => ({
    a: new Float32Array(rank * m.dIn).fill(0.5),
    b: new Float32Array(m.dOut * rank).fill(0.25),
    rank,
    layout: layout.modules.get(m.name)!.layout,
  });
  const { configText, safetensors } = encodeAdapter({
    template: layout.config,
    modules: new Map([
      [m0.name, module(m0, 3)],
      [m1.name, module(m1, 1)],
    ]),
    dense: new Map(),
    dtype: "F32",
    scaling: layout.scaling,
  });
  const decoded = decodeAdapter(configText, safetensors, "merged");
  for (const [name, m] of decoded.modules) {
    assert.equal(m.scaling, 2, `${name} at rank ${m.rank}`);
    // The product is what was merged: s · B_stored · A = b · a.
    assert.ok(Math.abs(m.scaling * m.b[0] * m.a[0] * m.rank - 0.125 * m.rank) < 1e-6);
  }
});
