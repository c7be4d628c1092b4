import assert from "node:assert/strict";
import { test } from "node:test";
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
