import assert from "node:assert/strict";
import { test } from "node:test";
import {
  add,
  column,
  diagScaleCols,
  diagScaleRows,
  frobenius2,
  fromFloat32,
  fromRows,
  identity,
  type Mat,
  mat,
  matmul,
  matmulNT,
  matmulTN,
  scale,
  sliceCols,
  sub,
  toFloat32,
  traceOfProduct,
  transpose,
} from "./mat.ts";
import { assertMatClose, randomMat } from "./testing/test-matrices.ts";

/** The textbook triple loop, as the reference for the optimised products. */
function naiveMatmul(a: Mat, b: Mat): Mat {
  const out = mat(a.rows, b.cols);
  for (let i = 0; i < a.rows; i++) {
    for (let j = 0; j < b.cols; j++) {
      let s = 0;
      for (let k = 0; k < a.cols; k++) s += a.data[i * a.cols + k] * b.data[k * b.cols + j];
      out.data[i * b.cols + j] = s;
    }
  }
  return out;
}

test("mat wraps data without copying, zero-fills, and checks the length", () => {
  const data = new Float64Array([1, 2, 3, 4, 5, 6]);
  const m = mat(2, 3, data);
  assert.equal(m.data, data);
  assert.deepEqual([m.rows, m.cols], [2, 3]);
  assert.deepEqual(Array.from(mat(2, 2).data), [0, 0, 0, 0]);
  assert.throws(() => mat(2, 2, data), RangeError);
  assert.throws(() => mat(-1, 2), RangeError);
  assert.throws(() => mat(1.5, 2), RangeError);
});

test("identity, fromRows, fromFloat32 and toFloat32 build the expected entries", () => {
  assert.deepEqual(Array.from(identity(3).data), [1, 0, 0, 0, 1, 0, 0, 0, 1]);
  assert.equal(identity(0).data.length, 0);
  const m = fromRows([
    [1, 2, 3],
    [4, 5, 6],
  ]);
  assert.deepEqual([m.rows, m.cols, ...m.data], [2, 3, 1, 2, 3, 4, 5, 6]);
  const e = fromRows([]);
  assert.deepEqual([e.rows, e.cols], [0, 0]);
  assert.throws(() => fromRows([[1, 2], [3]]), /row 1 has 1 entries, expected 2/);
  const f = fromFloat32(2, 2, new Float32Array([0.1, 2, 3, 4]));
  assert.equal(f.data[0], Math.fround(0.1));
  assert.throws(() => fromFloat32(2, 2, new Float32Array(3)), RangeError);
  const back = toFloat32(fromRows([[0.1, -2]]));
  assert.ok(back instanceof Float32Array);
  assert.deepEqual(Array.from(back), [Math.fround(0.1), -2]);
});

test("transpose swaps indices, including across block boundaries", () => {
  const t = transpose(
    fromRows([
      [1, 2, 3],
      [4, 5, 6],
    ]),
  );
  assert.deepEqual([t.rows, t.cols, ...t.data], [3, 2, 1, 4, 2, 5, 3, 6]);
  const a = randomMat(37, 70, 1);
  const at = transpose(a);
  for (let i = 0; i < a.rows; i++) {
    for (let j = 0; j < a.cols; j++) assert.equal(at.data[j * a.rows + i], a.data[i * a.cols + j]);
  }
  assert.deepEqual(transpose(transpose(a)), a);
});

test("matmul matches a known product and the triple loop at several shapes", () => {
  const c = matmul(
    fromRows([
      [1, 2],
      [3, 4],
    ]),
    fromRows([
      [5, 6, 7],
      [8, 9, 10],
    ]),
  );
  assert.deepEqual([c.rows, c.cols, ...c.data], [2, 3, 21, 24, 27, 47, 54, 61]);
  for (const [m, p, q] of [
    [1, 1, 1],
    [3, 5, 2],
    [7, 4, 9],
    [16, 13, 11],
    [33, 64, 17],
  ]) {
    const a = randomMat(m, p, m * 100 + p);
    const b = randomMat(p, q, q * 100 + p);
    assertMatClose(matmul(a, b), naiveMatmul(a, b), 1e-14, `matmul ${m}×${p}·${p}×${q}`);
  }
  const z = matmul(mat(3, 0), mat(0, 4));
  assert.deepEqual([z.rows, z.cols, ...z.data], [3, 4, ...new Array(12).fill(0)]);
  assert.throws(() => matmul(mat(2, 3), mat(2, 3)), RangeError);
});

test("matmulTN and matmulNT equal the products with an explicit transpose", () => {
  for (const [m, p, q] of [
    [1, 1, 1],
    [5, 3, 7],
    [13, 9, 6],
    [40, 21, 33],
  ]) {
    const a = randomMat(p, m, m + 7 * p);
    const b = randomMat(p, q, q + 11 * p);
    assertMatClose(matmulTN(a, b), naiveMatmul(transpose(a), b), 1e-14, `matmulTN ${m} ${p} ${q}`);
    const c = randomMat(m, p, m + 13 * p);
    const d = randomMat(q, p, q + 17 * p);
    assertMatClose(matmulNT(c, d), naiveMatmul(c, transpose(d)), 1e-14, `matmulNT ${m} ${p} ${q}`);
    const gram = matmulNT(c, c);
    assertMatClose(gram, naiveMatmul(c, transpose(c)), 1e-14, `matmulNT(c, c) ${m} ${p}`);
    assert.deepEqual(
      gram.data,
      matmulNT(c, { ...c }).data,
      "A Aᵀ from its upper triangle equals the general product",
    );
  }
  const tn = matmulTN(
    fromRows([
      [1, 2],
      [3, 4],
    ]),
    fromRows([[1], [1]]),
  );
  assert.deepEqual(Array.from(tn.data), [4, 6]);
  const nt = matmulNT(fromRows([[1, 2]]), fromRows([[3, 4]]));
  assert.deepEqual(Array.from(nt.data), [11]);
  assert.throws(() => matmulTN(mat(2, 3), mat(3, 2)), RangeError);
  assert.throws(() => matmulNT(mat(2, 3), mat(3, 2)), RangeError);
});

test("add, sub, scale and frobenius2 compute entrywise values", () => {
  const a = fromRows([
    [1, -2],
    [3, 4],
  ]);
  const b = fromRows([
    [0.5, 1],
    [-1, 2],
  ]);
  assert.deepEqual(Array.from(add(a, b).data), [1.5, -1, 2, 6]);
  assert.deepEqual(Array.from(sub(a, b).data), [0.5, -3, 4, 2]);
  assert.deepEqual(Array.from(scale(a, -2).data), [-2, 4, -6, -8]);
  assert.equal(frobenius2(a), 30);
  assert.equal(frobenius2(mat(0, 0)), 0);
  assert.throws(() => add(a, mat(2, 3)), RangeError);
  assert.throws(() => sub(a, mat(1, 2)), RangeError);
});

test("traceOfProduct equals the trace of the formed product", () => {
  const a = randomMat(6, 9, 3);
  const b = randomMat(9, 6, 4);
  const ab = matmul(a, b);
  let tr = 0;
  for (let i = 0; i < 6; i++) tr += ab.data[i * 6 + i];
  assert.ok(Math.abs(traceOfProduct(a, b) - tr) <= 1e-13 * Math.abs(tr));
  assert.equal(traceOfProduct(fromRows([[1, 2]]), fromRows([[3], [4]])), 11);
  assert.throws(() => traceOfProduct(mat(2, 3), mat(3, 3)), RangeError);
});

test("column, sliceCols, diagScaleCols and diagScaleRows pick and scale the right entries", () => {
  const m = fromRows([
    [1, 2, 3],
    [4, 5, 6],
  ]);
  assert.deepEqual(Array.from(column(m, 1)), [2, 5]);
  assert.throws(() => column(m, 3), RangeError);
  const s = sliceCols(m, 1, 3);
  assert.deepEqual([s.rows, s.cols, ...s.data], [2, 2, 2, 3, 5, 6]);
  assert.equal(sliceCols(m, 2, 2).cols, 0);
  assert.throws(() => sliceCols(m, 2, 1), RangeError);
  assert.throws(() => sliceCols(m, 0, 4), RangeError);
  assert.deepEqual(Array.from(diagScaleCols(m, new Float64Array([1, 0, -1])).data), [1, 0, -3, 4, 0, -6]);
  assert.deepEqual(Array.from(diagScaleRows(m, new Float64Array([2, -1])).data), [2, 4, 6, -4, -5, -6]);
  assert.throws(() => diagScaleCols(m, new Float64Array(2)), RangeError);
  assert.throws(() => diagScaleRows(m, new Float64Array(3)), RangeError);
});
