import assert from "node:assert/strict";
import { test } from "node:test";
import { createTask, type Dataset, nodeClasses, trainPerClass } from "./task.ts";

const SMALL = { nodes: 4, classesPerNode: 3, trainPerClass: 20, testPerClass: 10, pretrainPerClass: 20 };

function bytesOf(d: Dataset): Buffer {
  return Buffer.concat([Buffer.from(d.x.buffer), Buffer.from(d.y.buffer)]);
}

function allSets(seed: number): Dataset[] {
  const t = createTask({ ...SMALL, seed });
  return [t.pretrain.train, t.pretrain.test, t.globalTest, ...t.nodes.flatMap((n) => [n.train, n.test])];
}

test("same seed → same data; another seed → different data", () => {
  const [a, b, c] = [allSets(3), allSets(3), allSets(4)];
  a.forEach((d, i) => {
    assert.ok(bytesOf(d).equals(bytesOf(b[i])), `set ${i} differs between two runs`);
    assert.ok(!bytesOf(d).equals(bytesOf(c[i])), `set ${i} is the same for seeds 3 and 4`);
    assert.ok(d.x.every(Number.isFinite));
  });
});

test("each node holds only its own classes, with deterministic split sizes", () => {
  const task = createTask({ ...SMALL, seed: 1 });
  assert.deepEqual(
    task.nodes.map((n) => n.classes),
    [
      [0, 1, 2],
      [3, 4, 5],
      [6, 7, 8],
      [9, 0, 1],
    ],
  );
  for (const n of task.nodes) {
    assert.equal(n.train.n, 3 * 20);
    assert.equal(n.test.n, 3 * 10);
    assert.deepEqual([...new Set(n.train.y)].sort(), [...n.classes].sort());
    assert.deepEqual([...new Set(n.test.y)].sort(), [...n.classes].sort());
  }
  assert.equal(task.globalTest.n, 10 * 10);
  assert.deepEqual(nodeClasses(task.spec, 4), [2, 3, 4]);
});

test("the shifted distribution moves the inputs of every class", () => {
  const task = createTask({ ...SMALL, seed: 2 });
  const mean = (d: Dataset, c: number) => {
    const m = new Float64Array(d.dim);
    let count = 0;
    for (let i = 0; i < d.n; i++) {
      if (d.y[i] !== c) continue;
      count++;
      for (let j = 0; j < d.dim; j++) m[j] += d.x[i * d.dim + j];
    }
    return m.map((v) => v / count);
  };
  for (let c = 0; c < 10; c++) {
    const [p, s] = [mean(task.pretrain.train, c), mean(task.globalTest, c)];
    const moved = Math.hypot(...p.map((v, j) => v - s[j]));
    assert.ok(moved > 1, `class ${c} moved only ${moved}`);
  }
});

test("sizeSkew gives the last node sizeSkew times fewer samples", () => {
  const task = createTask({ ...SMALL, trainPerClass: 120, sizeSkew: 4, seed: 1 });
  assert.deepEqual(
    task.nodes.map((n) => n.train.n / 3),
    [0, 1, 2, 3].map((i) => trainPerClass(task.spec, i)),
  );
  assert.equal(trainPerClass(task.spec, 0), 120);
  assert.equal(trainPerClass(task.spec, 3), 30);
});

test("bad specs are rejected", () => {
  assert.throws(() => createTask({ shiftDims: 3 }), /shiftDims/);
  assert.throws(() => createTask({ classesPerNode: 11 }), /classesPerNode/);
  assert.throws(() => createTask({ nodes: 0 }), /nodes/);
  assert.throws(() => createTask({ sizeSkew: 0.5 }), /sizeSkew/);
});
