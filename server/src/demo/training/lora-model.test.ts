import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";
import * as tf from "@tensorflow/tfjs-core";
import type { BaseModel } from "./base-model.ts";
import { accuracy, initLora, predict, trainLora } from "./lora-model.ts";
import { testFixture } from "./testing/fixtures.ts";

function baseDigest(base: BaseModel): string {
  const h = createHash("sha256");
  for (const l of base.layers) h.update(l.w).update(l.bias);
  return h.digest("hex");
}

test("a fresh adapter (B = 0) leaves the base's predictions unchanged", async () => {
  const { task, base } = await testFixture();
  const lora = initLora(base, { rank: 4, alpha: 8, seed: 1 });
  for (const [name, f] of lora) {
    const layer = base.layers.find((l) => l.name === name)!;
    assert.deepEqual([f.rank, f.dIn, f.dOut, f.scaling], [4, layer.dIn, layer.dOut, 2]);
    assert.equal(f.a.length, 4 * layer.dIn);
    assert.ok(f.a.every((v) => Math.abs(v) <= 1 / Math.sqrt(layer.dIn)));
    assert.ok(f.b.every((v) => v === 0));
  }
  assert.deepEqual(predict(base, lora, task.globalTest), predict(base, null, task.globalTest));
});

test("LoRA training on a node's data lifts accuracy on its own classes; the base stays frozen", async () => {
  const { task, base } = await testFixture();
  const node = task.nodes[0];
  const digest = baseDigest(base);
  const tensors = tf.memory().numTensors;
  const before = accuracy(base, null, node.test);
  const { weights, loss } = trainLora(base, initLora(base, { rank: 4, alpha: 8, seed: 1 }), node.train, {
    epochs: 4,
    learningRate: 5e-3,
  });
  const after = accuracy(base, weights, node.test);
  assert.ok(before < 0.4, `base accuracy on node 0's classes ${before}`);
  assert.ok(after >= 0.85, `after local training ${after}`);
  assert.ok(Number.isFinite(loss) && loss < 0.5, `loss ${loss}`);
  assert.equal(baseDigest(base), digest);
  assert.equal(tf.memory().numTensors, tensors, "training leaked tensors");
});
