import assert from "node:assert/strict";
import { test } from "node:test";
import { fromRows, identity, type Mat, mat, matmul, transpose } from "./mat.ts";
import { pinv, pinvSym } from "./pinv.ts";
import { assertMatClose, duplicateColumn, randomLowRank, randomMat, randomPsd } from "./test-matrices.ts";

/** The four Moore–Penrose conditions. */
function checkPenrose(a: Mat, p: Mat, tol: number, what: string): void {
  assert.deepEqual([p.rows, p.cols], [a.cols, a.rows], `${what}: shape`);
  const ap = matmul(a, p);
  const pa = matmul(p, a);
  assertMatClose(matmul(ap, a), a, tol, `${what}: A A⁺ A = A`);
  assertMatClose(matmul(pa, p), p, tol, `${what}: A⁺ A A⁺ = A⁺`);
  assertMatClose(transpose(ap), ap, tol, `${what}: (A A⁺)ᵀ = A A⁺`);
  assertMatClose(transpose(pa), pa, tol, `${what}: (A⁺ A)ᵀ = A⁺ A`);
}

test("pinv satisfies the Moore–Penrose conditions at several shapes and ranks", () => {
  const cases: [string, Mat][] = [
    ["tall full rank", randomMat(30, 12, 1)],
    ["wide full rank", randomMat(12, 30, 2)],
    ["square", randomMat(20, 20, 3)],
    ["rank 4 tall", randomLowRank(25, 15, 4, 4)],
    ["rank 3 wide", randomLowRank(10, 22, 3, 5)],
    ["duplicate columns", duplicateColumn(randomMat(9, 6, 6), 2, 4)],
    ["1×1", fromRows([[-4]])],
  ];
  for (const [what, a] of cases) checkPenrose(a, pinv(a), 1e-10, what);
});

test("pinv inverts square and full-column-rank matrices", () => {
  const a = randomMat(15, 15, 9);
  assertMatClose(matmul(pinv(a), a), identity(15), 1e-11, "A⁺ A = I (square)");
  assertMatClose(matmul(a, pinv(a)), identity(15), 1e-11, "A A⁺ = I (square)");
  const t = randomMat(20, 6, 10);
  assertMatClose(matmul(pinv(t), t), identity(6), 1e-12, "A⁺ A = I (tall)");
  assert.deepEqual(Array.from(pinv(fromRows([[-4]])).data), [-0.25]);
  const known = pinv(fromRows([[1, 1]]));
  assertMatClose(known, fromRows([[0.5], [0.5]]), 1e-15, "[1 1]⁺");
});

test("pinv of zero and empty matrices is zero / empty; rcond drops small singular values", () => {
  const z = pinv(mat(3, 5));
  assert.deepEqual([z.rows, z.cols], [5, 3]);
  assert.ok(z.data.every((x) => x === 0));
  const e = pinv(mat(0, 4));
  assert.deepEqual([e.rows, e.cols], [4, 0]);
  const d = fromRows([
    [2, 0],
    [0, 1e-9],
  ]);
  assertMatClose(
    pinv(d, 1e-6),
    fromRows([
      [0.5, 0],
      [0, 0],
    ]),
    1e-15,
    "rcond 1e-6 drops 1e-9",
  );
  assertMatClose(
    pinv(d),
    fromRows([
      [0.5, 0],
      [0, 1e9],
    ]),
    1e-12,
    "default rcond keeps 1e-9",
  );
});

test("pinvSym of PSD matrices: Moore–Penrose conditions and agreement with pinv", () => {
  for (const [n, rank] of [
    [1, 1],
    [8, 8],
    [20, 5],
    [40, 39],
  ]) {
    const a = randomPsd(n, rank, 100 + n);
    const p = pinvSym(a);
    checkPenrose(a, p, 1e-9, `PSD n=${n} rank=${rank}`);
    assertMatClose(p, pinv(a), 1e-8, `pinvSym = pinv, n=${n} rank=${rank}`);
  }
});

test("pinvSym drops eigenvalues at or below rcond · max, and negative ones", () => {
  const d = fromRows([
    [4, 0, 0],
    [0, 1e-20, 0],
    [0, 0, 0],
  ]);
  assertMatClose(
    pinvSym(d),
    fromRows([
      [0.25, 0, 0],
      [0, 0, 0],
      [0, 0, 0],
    ]),
    1e-15,
    "diag(4, 1e-20, 0)",
  );
  const withNeg = fromRows([
    [2, 0],
    [0, -1],
  ]);
  assertMatClose(
    pinvSym(withNeg),
    fromRows([
      [0.5, 0],
      [0, 0],
    ]),
    1e-15,
    "negative eigenvalue dropped",
  );
  const z = pinvSym(mat(4, 4));
  assert.ok(z.data.every((x) => x === 0));
  assert.equal(pinvSym(mat(0, 0)).rows, 0);
  assert.throws(() => pinvSym(mat(2, 3)), /not square/);
});
