import assert from "node:assert/strict";
import { test } from "node:test";
import { cholesky, choleskySolve, solveLowerTriangular, solveUpperTriangular } from "./cholesky.ts";
import { fromRows, type Mat, mat, matmul, matmulNT, transpose } from "./mat.ts";
import { assertMatClose, randomMat, randomPsd } from "./test-matrices.ts";

function checkLower(l: Mat, what: string): void {
  const n = l.rows;
  for (let i = 0; i < n; i++) {
    assert.ok(l.data[i * n + i] > 0, `${what}: L[${i}][${i}] = ${l.data[i * n + i]}`);
    for (let j = i + 1; j < n; j++) assert.equal(l.data[i * n + j], 0, `${what}: L[${i}][${j}]`);
  }
}

test("cholesky of random SPD matrices: L Lᵀ = M, L lower triangular with positive diagonal", () => {
  for (const n of [1, 2, 7, 40, 120]) {
    const m = randomPsd(n, n + 5, 300 + n);
    const l = cholesky(m);
    assert.ok(l !== null, `n=${n}`);
    checkLower(l, `n=${n}`);
    assertMatClose(matmulNT(l, l), m, 1e-13, `L Lᵀ, n=${n}`);
  }
});

test("cholesky of a known matrix, and null for indefinite, singular or non-finite input", () => {
  const l = cholesky(
    fromRows([
      [4, 2],
      [2, 3],
    ]),
  );
  assert.ok(l !== null);
  assertMatClose(
    l,
    fromRows([
      [2, 0],
      [1, Math.SQRT2],
    ]),
    1e-15,
    "known factor",
  );
  assert.equal(
    cholesky(
      fromRows([
        [1, 2],
        [2, 1],
      ]),
    ),
    null,
  );
  assert.equal(
    cholesky(
      fromRows([
        [1, 1],
        [1, 1],
      ]),
    ),
    null,
  );
  assert.equal(cholesky(mat(3, 3)), null);
  assert.equal(cholesky(fromRows([[Number.NaN]])), null);
  assert.equal(cholesky(fromRows([[-1]])), null);
  const empty = cholesky(mat(0, 0));
  assert.ok(empty !== null && empty.rows === 0);
  assert.throws(() => cholesky(mat(2, 3)), /not square/);
});

test("triangular solves and choleskySolve satisfy their systems", () => {
  const n = 25;
  const m = randomPsd(n, n + 2, 8);
  const l = cholesky(m);
  assert.ok(l !== null);
  const b = randomMat(n, 4, 9);
  assertMatClose(matmul(l, solveLowerTriangular(l, b)), b, 1e-12, "L X = B");
  const u = transpose(l);
  assertMatClose(matmul(u, solveUpperTriangular(u, b)), b, 1e-12, "U X = B");
  assertMatClose(matmul(m, choleskySolve(l, b)), b, 1e-10, "M X = B");
  const x = solveLowerTriangular(
    fromRows([
      [2, 0],
      [1, 4],
    ]),
    fromRows([[4], [10]]),
  );
  assert.deepEqual(Array.from(x.data), [2, 2]);
  const y = solveUpperTriangular(
    fromRows([
      [2, 1],
      [0, 4],
    ]),
    fromRows([[4], [8]]),
  );
  assert.deepEqual(Array.from(y.data), [1, 2]);
  // The ignored triangle really is ignored.
  const z = solveLowerTriangular(
    fromRows([
      [2, 99],
      [1, 4],
    ]),
    fromRows([[4], [10]]),
  );
  assert.deepEqual(Array.from(z.data), [2, 2]);
  assert.throws(() => solveLowerTriangular(l, mat(3, 1)), RangeError);
  assert.equal(choleskySolve(mat(0, 0), mat(0, 2)).cols, 2);
});
