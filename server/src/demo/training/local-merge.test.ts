import assert from "node:assert/strict";
import { test } from "node:test";
import { decodeLora, encodeLora } from "./adapter-files.ts";
import { mergeAdapterFiles } from "./local-merge.ts";
import { initLora, predict, trainLora } from "./lora-model.ts";
import { testFixture } from "./testing/fixtures.ts";

test("an adapter merged with itself predicts like itself (FroM and FedAvg)", async () => {
  const { task, base } = await testFixture();
  const { weights } = trainLora(base, initLora(base, { rank: 4, alpha: 8, seed: 3 }), task.nodes[3].train, {
    epochs: 2,
  });
  const files = encodeLora(weights);
  const expected = predict(base, weights, task.globalTest);
  for (const method of ["from", "fedavg"]) {
    const merged = mergeAdapterFiles([files, files], [100, 300], { method });
    const got = predict(base, decodeLora(merged, method).weights, task.globalTest);
    const agree = got.filter((c, i) => c === expected[i]).length / got.length;
    assert.ok(agree > 0.99, `${method}: ${agree} of predictions agree`);
  }
});

test("merge inputs must have the same modules", async () => {
  const { base } = await testFixture();
  const full = encodeLora(initLora(base, { rank: 2, alpha: 2, seed: 1 }));
  const partial = new Map(initLora(base, { rank: 2, alpha: 2, seed: 1 }));
  partial.delete("model.head");
  assert.throws(
    () => mergeAdapterFiles([full, encodeLora(partial)], [1, 1], { method: "fedavg" }),
    /node-1: module model.head is missing/,
  );
});
