import assert from "node:assert/strict";
import { testEach as test } from "../../testing/decompositions.ts";
import { symEig } from "./decompositions.ts";
import { genSymEig } from "./gen-sym-eig.ts";
import { diagScaleCols, fromRows, identity, type Mat, mat, matmul, matmulTN } from "./mat.ts";
import {
  assertDescending,
  assertMatClose,
  duplicateColumn,
  randomMat,
  randomPsd,
  randomSym,
} from "./testing/test-matrices.ts";

function checkPencil(
  h: Mat,
  s: Mat,
  rank: number,
  what: string,
  tol = 1e-10,
): { values: Float64Array; vectors: Mat } {
  const r = genSymEig(h, s);
  assert.equal(r.values.length, rank, `${what}: number of eigenpairs`);
  assert.deepEqual([r.vectors.rows, r.vectors.cols], [h.rows, rank], `${what}: shape of W`);
  assertDescending(r.values, what);
  assertMatClose(matmulTN(r.vectors, matmul(s, r.vectors)), identity(rank), tol, `${what}: Wᵀ S W = I`);
  assertMatClose(
    matmul(h, r.vectors),
    matmul(s, diagScaleCols(r.vectors, r.values)),
    tol,
    `${what}: H W = S W Λ`,
  );
  return r;
}

test("genSymEig with a positive definite S solves H W = S W Λ, Wᵀ S W = I", () => {
  for (const n of [1, 2, 6, 25]) {
    const h = randomSym(n, 10 + n);
    const s = randomPsd(n, n + 3, 20 + n);
    checkPencil(h, s, n, `n=${n}`);
  }
});

test("genSymEig with S = I reduces to symEig", () => {
  const h = randomSym(12, 4);
  const r = genSymEig(h, identity(12));
  const ref = symEig(h);
  for (let i = 0; i < 12; i++) assert.ok(Math.abs(r.values[i] - ref.values[i]) < 1e-12, `λ${i}`);
});

test("genSymEig Rayleigh–Ritz with a singular S (dependent block columns)", () => {
  // Y has two duplicated columns: S = YᵀY is singular (rank 6 of 8) and H = YᵀTY shares its null space.
  const t = randomSym(30, 3);
  const y = duplicateColumn(duplicateColumn(randomMat(30, 8, 5), 0, 5), 2, 7);
  const s = matmulTN(y, y);
  const h = matmulTN(y, matmul(t, y));
  const r = checkPencil(h, s, 6, "rank-6 S");
  // The Ritz values lie within the spectrum of T.
  const tv = symEig(t).values;
  for (const v of r.values) assert.ok(v <= tv[0] + 1e-10 && v >= tv[29] - 1e-10, `Ritz value ${v}`);
  // When Y spans an invariant subspace of T the Ritz values are exact eigenvalues.
  const et = symEig(t);
  const basis = duplicateColumn(
    {
      rows: 30,
      cols: 5,
      data: Float64Array.from({ length: 150 }, (_, i) => et.vectors.data[Math.floor(i / 5) * 30 + (i % 5)]),
    },
    0,
    4,
  );
  const yb = matmul(basis, randomMat(5, 5, 9));
  const rb = checkPencil(matmulTN(yb, matmul(t, yb)), matmulTN(yb, yb), 4, "invariant subspace");
  for (let i = 0; i < 4; i++)
    assert.ok(Math.abs(rb.values[i] - tv[i]) < 1e-10, `Ritz ${rb.values[i]} vs ${tv[i]}`);
});

test("genSymEig of a known pencil, a zero S and the empty problem", () => {
  const r = genSymEig(fromRows([[6]]), fromRows([[2]]));
  assert.ok(Math.abs(r.values[0] - 3) < 1e-15);
  assert.ok(Math.abs(Math.abs(r.vectors.data[0]) - Math.SQRT1_2) < 1e-15);
  const d = genSymEig(
    fromRows([
      [2, 0],
      [0, 9],
    ]),
    fromRows([
      [1, 0],
      [0, 0],
    ]),
  );
  assert.deepEqual(Array.from(d.values), [2]);
  assert.deepEqual(Array.from(d.vectors.data, Math.abs), [1, 0]);
  const z = genSymEig(randomSym(3, 1), mat(3, 3));
  assert.equal(z.values.length, 0);
  assert.deepEqual([z.vectors.rows, z.vectors.cols], [3, 0]);
  const e = genSymEig(mat(0, 0), mat(0, 0));
  assert.equal(e.values.length, 0);
  assert.throws(() => genSymEig(mat(2, 2), mat(3, 3)), RangeError);
});

test("genSymEig rcond decides which directions of S are kept", () => {
  const s = fromRows([
    [1, 0],
    [0, 1e-8],
  ]);
  const h = identity(2);
  assert.equal(genSymEig(h, s).values.length, 2);
  assert.equal(genSymEig(h, s, 1e-6).values.length, 1);
});
