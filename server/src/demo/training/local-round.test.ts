import assert from "node:assert/strict";
import { test } from "node:test";
import { decodeLora, encodeLora } from "./adapter-files.ts";
import { evaluate, trainNode } from "./local-round.ts";
import { accuracy, initLora } from "./lora-model.ts";
import { testFixture } from "./testing/fixtures.ts";

test("trainNode is deterministic: same seed → same adapter bytes; another seed → other bytes", async () => {
  const { task, base } = await testFixture();
  const input = { node: 2, task, base, globalAdapter: null, rank: 4, epochs: 2, seed: 7 };
  const [a, b, c] = [await trainNode(input), await trainNode(input), await trainNode({ ...input, seed: 8 })];
  assert.equal(a.adapter.configJson, b.adapter.configJson);
  assert.ok(Buffer.from(a.adapter.safetensors).equals(Buffer.from(b.adapter.safetensors)));
  assert.ok(!Buffer.from(a.adapter.safetensors).equals(Buffer.from(c.adapter.safetensors)));
  assert.deepEqual(a.metrics, b.metrics);
  assert.equal(a.samples, task.nodes[2].train.n);
  const before = accuracy(base, null, task.nodes[2].test);
  assert.ok(a.metrics.accuracy > before + 0.15, `local accuracy ${a.metrics.accuracy}, base ${before}`);
});

test("trainNode continues from the global adapter at its rank and scaling", async () => {
  const { task, base } = await testFixture();
  // A global adapter of rank 6, alpha 3 (as a merge might write it).
  const global = encodeLora(initLora(base, { rank: 6, alpha: 3, seed: 4 }));
  const { adapter } = await trainNode({
    node: 0,
    task,
    base,
    globalAdapter: global,
    rank: 4,
    epochs: 1,
    seed: 1,
  });
  const out = decodeLora(adapter, "node-0");
  for (const f of out.weights.values()) assert.deepEqual([f.rank, f.scaling], [6, 0.5]);
  assert.equal(out.config.loraAlpha, 3);
});

test("evaluate reports per-node and global accuracy; null is the base alone", async () => {
  const { task, base } = await testFixture();
  const result = await evaluate({ task, base, adapter: null });
  assert.deepEqual(
    result.perNode,
    task.nodes.map((n) => accuracy(base, null, n.test)),
  );
  assert.equal(result.global, accuracy(base, null, task.globalTest));
  const bad = encodeLora(
    new Map([
      ["model.layers.7.fc", { ...initLora(base, { rank: 2, alpha: 2, seed: 1 }).get("model.head")! }],
    ]),
  );
  await assert.rejects(evaluate({ task, base, adapter: bad }), /module model.layers.7.fc is not a layer/);
});
