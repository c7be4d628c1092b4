import assert from "node:assert/strict";
import { test } from "node:test";
import { selectBackend } from "../../compute/backend.ts";
import { moduleNames, moduleShapes, trainBaseModel } from "./base-model.ts";
import { accuracy } from "./lora-model.ts";
import { createTask } from "./task.ts";
import { testFixture } from "./testing/fixtures.ts";

test("the base is accurate on the pretraining distribution, much worse on the shifted one", async () => {
  const { task, base } = await testFixture();
  const pre = accuracy(base, null, task.pretrain.test);
  const shifted = accuracy(base, null, task.globalTest);
  assert.ok(pre >= 0.85, `pretraining accuracy ${pre}`);
  assert.ok(shifted <= 0.4, `shifted accuracy ${shifted}`);
  assert.ok(pre - shifted >= 0.5, `gap ${pre - shifted}`);
  assert.deepEqual(moduleShapes(base), [
    { name: "model.layers.0.fc", dIn: 32, dOut: 128 },
    { name: "model.layers.1.fc", dIn: 128, dOut: 128 },
    { name: "model.head", dIn: 128, dOut: 10 },
  ]);
});

test("same seed → same base weights", async () => {
  await selectBackend();
  const task = createTask({ pretrainPerClass: 30, nodes: 1, seed: 5 });
  const opts = { hidden: [16], epochs: 2, seed: 9 };
  const [a, b] = [trainBaseModel(task, opts), trainBaseModel(task, opts)];
  assert.deepEqual(
    a.model.layers.map((l) => l.name),
    moduleNames(1),
  );
  a.model.layers.forEach((l, i) => {
    assert.ok(Buffer.from(l.w.buffer).equals(Buffer.from(b.model.layers[i].w.buffer)), `${l.name} W differs`);
    assert.ok(Buffer.from(l.bias.buffer).equals(Buffer.from(b.model.layers[i].bias.buffer)));
  });
  assert.equal(a.loss, b.loss);
  assert.ok(Number.isFinite(a.loss));
});
