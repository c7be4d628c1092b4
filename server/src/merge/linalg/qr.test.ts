import assert from "node:assert/strict";
import { test } from "node:test";
import { fromRows, type Mat, mat, matmul } from "./mat.ts";
import { qr } from "./qr.ts";
import { assertMatClose, assertOrthonormalCols, duplicateColumn, randomMat } from "./test-matrices.ts";

function checkQr(m: Mat, what: string): { q: Mat; r: Mat } {
  const d = qr(m);
  const k = Math.min(m.rows, m.cols);
  assert.deepEqual([d.q.rows, d.q.cols, d.r.rows, d.r.cols], [m.rows, k, k, m.cols], `${what}: shapes`);
  for (let i = 0; i < k; i++) {
    assert.ok(d.r.data[i * m.cols + i] >= 0, `${what}: R[${i}][${i}] < 0`);
    for (let j = 0; j < Math.min(i, m.cols); j++)
      assert.equal(d.r.data[i * m.cols + j], 0, `${what}: R[${i}][${j}]`);
  }
  assertMatClose(matmul(d.q, d.r), m, 1e-13, `${what}: Q R`);
  assertOrthonormalCols(d.q, 1e-13, `${what}: Q`);
  return d;
}

test("qr of random tall, square and wide matrices", () => {
  for (const [r, c] of [
    [1, 1],
    [5, 1],
    [6, 4],
    [30, 30],
    [100, 20],
    [300, 64],
    [4, 9],
  ]) {
    checkQr(randomMat(r, c, 7 * r + c), `${r}×${c}`);
  }
});

test("qr of a known matrix", () => {
  const d = qr(fromRows([[3], [4]]));
  assertMatClose(d.q, fromRows([[0.6], [0.8]]), 1e-15, "Q");
  assertMatClose(d.r, fromRows([[5]]), 1e-15, "R");
  const n = qr(fromRows([[-2], [0]]));
  assert.deepEqual(Array.from(n.r.data), [2]);
  assert.deepEqual(Array.from(n.q.data), [-1, 0]);
});

test("qr of rank-deficient and zero matrices keeps Q orthonormal", () => {
  const m = duplicateColumn(randomMat(12, 5, 3), 1, 3);
  const d = checkQr(m, "duplicate column");
  assert.ok(Math.abs(d.r.data[3 * 5 + 3]) < 1e-13 * d.r.data[0], `R[3][3] = ${d.r.data[3 * 5 + 3]}`);
  const z = checkQr(mat(6, 3), "zero");
  assert.ok(z.r.data.every((x) => x === 0));
  const e = qr(mat(0, 0));
  assert.deepEqual([e.q.rows, e.q.cols, e.r.rows, e.r.cols], [0, 0, 0, 0]);
  assert.throws(() => qr(fromRows([[Number.NaN]])), /NaN/);
});
