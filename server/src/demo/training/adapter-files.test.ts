import assert from "node:assert/strict";
import { test } from "node:test";
import { assertClose } from "../../merge/testing/assert-close.ts";
import { parseSafetensors } from "../../peft/index.ts";
import { decodeLora, demoAdapterConfig, encodeLora } from "./adapter-files.ts";
import { BASE_MODEL_ID } from "./base-model.ts";
import { initLora, type LoraWeights, predict, trainLora } from "./lora-model.ts";
import { testFixture } from "./testing/fixtures.ts";

/** `scaling · B · A` of every module, dense, in module-name order. */
function deltas(w: LoraWeights): Float64Array[] {
  return [...w.keys()].sort().map((name) => {
    const f = w.get(name)!;
    const d = new Float64Array(f.dOut * f.dIn);
    for (let o = 0; o < f.dOut; o++)
      for (let k = 0; k < f.rank; k++)
        for (let i = 0; i < f.dIn; i++)
          d[o * f.dIn + i] += f.scaling * f.b[o * f.rank + k] * f.a[k * f.dIn + i];
    return d;
  });
}

function assertSameDeltas(actual: LoraWeights, expected: LoraWeights): void {
  const want = deltas(expected);
  deltas(actual).forEach((d, m) => {
    assertClose(d, want[m], { rtol: 1e-5, atol: 1e-7, what: `ΔW of module ${m}` });
  });
}

async function trained(): Promise<LoraWeights> {
  const { task, base } = await testFixture();
  return trainLora(base, initLora(base, { rank: 4, alpha: 16, seed: 2 }), task.nodes[1].train, { epochs: 2 })
    .weights;
}

test("a trained adapter survives the PEFT round trip: config, tensor names, predictions", async () => {
  const { task, base } = await testFixture();
  const weights = await trained();
  const files = encodeLora(weights);
  const config = JSON.parse(files.configJson) as Record<string, unknown>;
  assert.equal(config.peft_type, "LORA");
  assert.equal(config.base_model_name_or_path, BASE_MODEL_ID);
  assert.equal(config.r, 4);
  assert.equal(config.lora_alpha, 16);
  assert.deepEqual(config.target_modules, ["fc", "head"]);
  const { tensors } = parseSafetensors(files.safetensors, "adapter_model.safetensors");
  assert.deepEqual([...tensors.keys()].sort(), [
    "base_model.model.model.head.lora_A.weight",
    "base_model.model.model.head.lora_B.weight",
    "base_model.model.model.layers.0.fc.lora_A.weight",
    "base_model.model.model.layers.0.fc.lora_B.weight",
    "base_model.model.model.layers.1.fc.lora_A.weight",
    "base_model.model.model.layers.1.fc.lora_B.weight",
  ]);
  assert.deepEqual(tensors.get("base_model.model.model.layers.0.fc.lora_A.weight")!.shape, [4, 32]);
  assert.deepEqual(tensors.get("base_model.model.model.head.lora_B.weight")!.shape, [10, 4]);

  const back = decodeLora(files, "node-1").weights;
  assert.deepEqual([...back.keys()].sort(), [...weights.keys()].sort());
  assertSameDeltas(back, weights);
  assert.deepEqual(predict(base, back, task.globalTest), predict(base, weights, task.globalTest));
});

test("re-encoding with another adapter's config keeps each module's ΔW", async () => {
  const weights = await trained();
  // A merged adapter's config: other r and alpha; encodeAdapter folds the difference into B.
  const files = encodeLora(weights, demoAdapterConfig(6, 3));
  assert.equal((JSON.parse(files.configJson) as { r: number }).r, 4);
  const back = decodeLora(files, "re-encoded").weights;
  assert.equal([...back.values()][0].scaling, 3 / 4);
  assertSameDeltas(back, weights);
});

test("an adapter for another base model is rejected", async () => {
  const files = encodeLora(await trained());
  const other = { ...files, configJson: files.configJson.replace(BASE_MODEL_ID, "meta-llama/Llama-3-8B") };
  assert.throws(() => decodeLora(other, "stranger"), /stranger: adapter is for base model meta-llama/);
});
