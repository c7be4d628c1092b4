import assert from "node:assert/strict";
import { testEach as test } from "../../testing/decompositions.ts";
import { denseGramNT, denseGramTN, denseMatmulNT, denseMatmulTN, svd, symEig } from "./decompositions.ts";
import { diagScaleCols, fromRows, type Mat, mat, matmulNT, matmulTN } from "./mat.ts";
import {
  assertDescending,
  assertMatClose,
  assertOrthonormalCols,
  duplicateColumn,
  randomLowRank,
  randomMat,
} from "./testing/test-matrices.ts";

function reconstruct(u: Mat, s: Float64Array, v: Mat): Mat {
  return matmulNT(diagScaleCols(u, s), v);
}

function checkSvd(m: Mat, what: string, tol = 1e-12): { u: Mat; s: Float64Array; v: Mat } {
  const d = svd(m);
  const k = Math.min(m.rows, m.cols);
  assert.deepEqual([d.u.rows, d.u.cols, d.v.rows, d.v.cols, d.s.length], [m.rows, k, m.cols, k, k], what);
  assertDescending(d.s, what);
  for (const x of d.s) assert.ok(x >= 0, `${what}: negative singular value ${x}`);
  assertMatClose(reconstruct(d.u, d.s, d.v), m, tol, `${what}: U S Vᵀ`);
  assertOrthonormalCols(d.u, tol * 10, `${what}: U`);
  assertOrthonormalCols(d.v, tol * 10, `${what}: V`);
  return d;
}

test("svd of random matrices at tall, wide and square shapes", () => {
  const shapes = [
    [1, 1],
    [1, 6],
    [6, 1],
    [2, 2],
    [3, 7],
    [7, 3],
    [20, 20],
    [50, 30],
    [30, 50],
    [100, 100],
    [200, 40],
  ];
  for (const [r, c] of shapes) checkSvd(randomMat(r, c, r * 1000 + c), `${r}×${c}`);
});

test("svd singular values are the square roots of the eigenvalues of MᵀM", () => {
  const m = randomMat(40, 25, 11);
  const { s } = svd(m);
  const ev = symEig(matmulTN(m, m)).values;
  for (let i = 0; i < 25; i++) {
    assert.ok(Math.abs(s[i] - Math.sqrt(ev[i])) <= 1e-12 * s[0], `σ${i} ${s[i]} vs √λ ${Math.sqrt(ev[i])}`);
  }
});

test("svd of known matrices", () => {
  const d = svd(
    fromRows([
      [0, -2],
      [3, 0],
    ]),
  );
  assert.deepEqual(Array.from(d.s), [3, 2]);
  assertMatClose(
    reconstruct(d.u, d.s, d.v),
    fromRows([
      [0, -2],
      [3, 0],
    ]),
    1e-15,
    "2×2",
  );
  const row = svd(fromRows([[3, 4]]));
  assert.ok(Math.abs(row.s[0] - 5) < 1e-15);
  assert.ok(
    Math.abs(Math.abs(row.v.data[0]) - 0.6) < 1e-15 && Math.abs(Math.abs(row.v.data[1]) - 0.8) < 1e-15,
  );
  assert.equal(Math.abs(row.u.data[0]), 1);
  const neg = svd(fromRows([[-4]]));
  assert.deepEqual(Array.from(neg.s), [4]);
  assert.equal(neg.u.data[0] * neg.v.data[0], -1);
});

test("svd of rank-deficient inputs: duplicate columns and low-rank products", () => {
  for (const [r, c] of [
    [12, 8],
    [8, 12],
    [9, 9],
  ]) {
    const m = duplicateColumn(duplicateColumn(randomMat(r, c, r + 31 * c), 0, 3), 1, c - 1);
    const d = checkSvd(m, `duplicate columns ${r}×${c}`);
    const k = Math.min(r, c);
    const zeros = k - Math.min(r, c - 2);
    for (let i = k - zeros; i < k; i++) assert.ok(d.s[i] < 1e-13 * d.s[0], `σ${i} = ${d.s[i]}`);
    assert.ok(d.s[k - zeros - 1] > 1e-3 * d.s[0], "only the duplicated directions vanish");
  }
  const low = randomLowRank(60, 45, 5, 3);
  const d = checkSvd(low, "rank 5");
  for (let i = 0; i < 5; i++) assert.ok(d.s[i] > 1, `σ${i} = ${d.s[i]}`);
  for (let i = 5; i < 45; i++) assert.ok(d.s[i] < 1e-13 * d.s[0], `σ${i} = ${d.s[i]}`);
});

test("svd of zero matrices gives zero singular values and orthonormal factors", () => {
  for (const [r, c] of [
    [4, 4],
    [6, 3],
    [3, 6],
    [1, 1],
  ]) {
    const d = checkSvd(mat(r, c), `zero ${r}×${c}`);
    for (const x of d.s) assert.equal(x, 0);
  }
});

test("svd of empty matrices and non-finite input", () => {
  const a = svd(mat(0, 3));
  assert.deepEqual([a.u.rows, a.u.cols, a.v.rows, a.v.cols, a.s.length], [0, 0, 3, 0, 0]);
  const b = svd(mat(4, 0));
  assert.deepEqual([b.u.rows, b.u.cols, b.v.rows, b.v.cols, b.s.length], [4, 0, 0, 0, 0]);
  assert.throws(() => svd(fromRows([[1, Number.POSITIVE_INFINITY]])), /Infinity/);
});

test("svd of badly scaled input keeps relative accuracy", () => {
  const m = randomMat(15, 10, 8);
  const ref = svd(m);
  for (const factor of [1e-150, 1e150, 1e-300, 1e-310, 1e300]) {
    const scaled = { rows: 15, cols: 10, data: m.data.map((x) => x * factor) };
    const d = svd(scaled);
    const tol = factor < 1e-307 ? 1e-10 : 1e-12;
    for (let i = 0; i < 10; i++) {
      assert.ok(Math.abs(d.s[i] / factor - ref.s[i]) <= tol * ref.s[0], `${factor}: σ${i} = ${d.s[i]}`);
    }
    assertOrthonormalCols(d.u, 1e-12, `${factor}: U`);
    assertOrthonormalCols(d.v, 1e-12, `${factor}: V`);
  }
});

test("denseMatmulNT is A Bᵀ, empty shapes included", () => {
  for (const [m, k, n] of [
    [3, 5, 4],
    [1, 1, 1],
    [0, 3, 2],
    [4, 0, 2],
    [40, 33, 27],
  ]) {
    const a = randomMat(m, k, m + k);
    const b = randomMat(n, k, n * 3 + k);
    const got = denseMatmulNT(a, b);
    assert.deepEqual([got.rows, got.cols], [m, n]);
    const want = matmulNT(a, b);
    for (let i = 0; i < want.data.length; i++)
      assert.ok(Math.abs(got.data[i] - want.data[i]) <= 1e-12 * (1 + Math.abs(want.data[i])));
  }
});

test("denseMatmulTN is Aᵀ B, empty shapes included", () => {
  for (const [k, m, n] of [
    [3, 5, 4],
    [1, 1, 1],
    [0, 3, 2],
    [4, 0, 2],
    [4096, 16, 16],
    [40, 33, 27],
  ]) {
    const a = randomMat(k, m, k + m);
    const b = randomMat(k, n, n * 3 + k);
    const got = denseMatmulTN(a, b);
    assert.deepEqual([got.rows, got.cols], [m, n]);
    const want = matmulTN(a, b);
    for (let i = 0; i < want.data.length; i++)
      assert.ok(Math.abs(got.data[i] - want.data[i]) <= 1e-12 * (1 + Math.abs(want.data[i])));
  }
});

test("denseGramTN / denseGramNT are AᵀA / AAᵀ, whole and symmetric, empty shapes included", () => {
  for (const [rows, cols] of [
    [3, 5],
    [1, 1],
    [0, 3],
    [4, 0],
    [4096, 16],
    [16, 4096],
    [40, 33],
  ]) {
    const a = randomMat(rows, cols, rows * 7 + cols);
    for (const [got, want] of [
      [denseGramTN(a), matmulTN(a, a)],
      [denseGramNT(a), matmulNT(a, a)],
    ]) {
      assert.deepEqual([got.rows, got.cols], [want.rows, want.cols]);
      for (let i = 0; i < want.data.length; i++)
        assert.ok(Math.abs(got.data[i] - want.data[i]) <= 1e-12 * (1 + Math.abs(want.data[i])));
      const n = got.rows;
      for (let i = 0; i < n; i++)
        for (let j = 0; j < i; j++) assert.equal(got.data[i * n + j], got.data[j * n + i]);
    }
  }
});
