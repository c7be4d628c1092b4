import assert from "node:assert/strict";
import { testEach as test } from "../../testing/decompositions.ts";
import { fromRows, identity, type Mat, mat, matmul, transpose } from "./mat.ts";
import { pinvSym } from "./pinv.ts";
import { assertMatClose, randomPsd } from "./testing/test-matrices.ts";

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

test("pinvSym of PSD matrices: the Moore–Penrose conditions (which determine A⁺), and A⁺A = I at full rank", () => {
  for (const [n, rank] of [
    [1, 1],
    [8, 8],
    [20, 5],
    [40, 39],
  ]) {
    const a = randomPsd(n, rank, 100 + n);
    const p = pinvSym(a);
    checkPenrose(a, p, 1e-9, `PSD n=${n} rank=${rank}`);
    if (rank === n) assertMatClose(matmul(p, a), identity(n), 1e-8, `A⁺ A = I, n=${n}`);
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
