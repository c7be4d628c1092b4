import assert from "node:assert/strict";
import { testEach as test } from "../../testing/decompositions.ts";
import { symEig } from "./decompositions.ts";
import { diagScaleCols, fromRows, identity, type Mat, mat, matmul, matmulNT, transpose } from "./mat.ts";
import {
  assertDescending,
  assertMatClose,
  assertOrthonormalCols,
  randomMat,
  randomPsd,
  randomSym,
} from "./testing/test-matrices.ts";

function reconstruct(values: Float64Array, vectors: Mat): Mat {
  return matmulNT(diagScaleCols(vectors, values), vectors);
}

test("symEig of random symmetric matrices: V Λ Vᵀ = M, VᵀV = I, A V = V Λ, descending", () => {
  for (const n of [1, 2, 3, 5, 17, 64, 128]) {
    const m = randomSym(n, 1000 + n);
    const { values, vectors } = symEig(m);
    assert.equal(values.length, n);
    assert.deepEqual([vectors.rows, vectors.cols], [n, n]);
    assertDescending(values, `n=${n}`);
    assertMatClose(reconstruct(values, vectors), m, 1e-12, `V Λ Vᵀ, n=${n}`);
    assertOrthonormalCols(vectors, 1e-12, `V, n=${n}`);
    assertMatClose(matmul(m, vectors), diagScaleCols(vectors, values), 1e-12, `A V = V Λ, n=${n}`);
    let trace = 0;
    let sum = 0;
    for (let i = 0; i < n; i++) {
      trace += m.data[i * n + i];
      sum += values[i];
    }
    assert.ok(Math.abs(trace - sum) <= 1e-12 * n, `trace ${trace} vs Σλ ${sum}`);
  }
});

test("symEig of a known 2×2 and 3×3 gives the textbook eigenpairs", () => {
  const { values, vectors } = symEig(
    fromRows([
      [2, 1],
      [1, 2],
    ]),
  );
  assert.ok(Math.abs(values[0] - 3) < 1e-15 && Math.abs(values[1] - 1) < 1e-15, `${values}`);
  // The eigenvector of 3 is ±(1, 1)/√2.
  assert.ok(Math.abs(Math.abs(vectors.data[0]) - Math.SQRT1_2) < 1e-15);
  assert.ok(Math.abs(vectors.data[0] - vectors.data[2]) < 1e-15);
  const d = symEig(
    fromRows([
      [1, 0, 0],
      [0, -4, 0],
      [0, 0, 7],
    ]),
  );
  assert.deepEqual(Array.from(d.values), [7, 1, -4]);
  // Column c of V is the unit vector of the diagonal entry sorted c-th: 7 (e₂), 1 (e₀), −4 (e₁).
  const abs = Array.from(d.vectors.data, Math.abs);
  assert.deepEqual(abs, [0, 1, 0, 0, 0, 1, 1, 0, 0]);
});

test("symEig decomposes the symmetric part of a non-symmetric input", () => {
  const a = randomMat(9, 9, 5);
  const sym = mat(9, 9);
  const at = transpose(a);
  for (let i = 0; i < 81; i++) sym.data[i] = 0.5 * (a.data[i] + at.data[i]);
  const { values, vectors } = symEig(a);
  assertMatClose(reconstruct(values, vectors), sym, 1e-13, "V Λ Vᵀ = (A + Aᵀ)/2");
  assert.deepEqual(Array.from(values), Array.from(symEig(sym).values));
});

test("symEig handles rank-deficient, repeated and zero spectra", () => {
  const n = 30;
  const psd = randomPsd(n, 4, 77);
  const e = symEig(psd);
  assertDescending(e.values, "psd");
  for (let i = 0; i < 4; i++) assert.ok(e.values[i] > 1, `λ${i} = ${e.values[i]}`);
  for (let i = 4; i < n; i++)
    assert.ok(Math.abs(e.values[i]) < 1e-12 * e.values[0], `λ${i} = ${e.values[i]}`);
  assertMatClose(reconstruct(e.values, e.vectors), psd, 1e-13, "rank-4 PSD");
  assertOrthonormalCols(e.vectors, 1e-12, "rank-4 PSD");

  const id = symEig(identity(6));
  assert.deepEqual(Array.from(id.values), [1, 1, 1, 1, 1, 1]);
  assertOrthonormalCols(id.vectors, 1e-15, "identity");

  const z = symEig(mat(5, 5));
  assert.deepEqual(Array.from(z.values), [0, 0, 0, 0, 0]);
  assertOrthonormalCols(z.vectors, 1e-15, "zero");

  // Block-diagonal with a repeated eigenvalue across blocks.
  const b = fromRows([
    [2, 1, 0, 0],
    [1, 2, 0, 0],
    [0, 0, 3, 0],
    [0, 0, 0, 1],
  ]);
  const be = symEig(b);
  const expected = [3, 3, 1, 1];
  for (let i = 0; i < 4; i++) assert.ok(Math.abs(be.values[i] - expected[i]) < 1e-14, `${be.values}`);
  assertMatClose(reconstruct(be.values, be.vectors), b, 1e-15, "block diagonal");
});

test("symEig edge cases: 1×1, 0×0, non-square and non-finite input", () => {
  const one = symEig(fromRows([[-2.5]]));
  assert.deepEqual(Array.from(one.values), [-2.5]);
  assert.deepEqual(Array.from(one.vectors.data), [1]);
  const empty = symEig(mat(0, 0));
  assert.equal(empty.values.length, 0);
  assert.deepEqual([empty.vectors.rows, empty.vectors.cols], [0, 0]);
  assert.throws(() => symEig(mat(2, 3)), /not square/);
  assert.throws(
    () =>
      symEig(
        fromRows([
          [1, Number.NaN],
          [0, 1],
        ]),
      ),
    /entry \(0, 1\) is NaN/,
  );
});

test("symEig of badly scaled input keeps relative accuracy (tiny, huge and subnormal entries)", () => {
  const m = randomSym(12, 21);
  const ref = symEig(m);
  for (const factor of [1e-300, 1e-310, 1e300]) {
    const scaled = { rows: 12, cols: 12, data: m.data.map((x) => x * factor) };
    const { values, vectors } = symEig(scaled);
    const tol = factor < 1e-307 ? 1e-10 : 1e-13;
    for (let i = 0; i < 12; i++) {
      assert.ok(
        Math.abs(values[i] / factor - ref.values[i]) <= tol * Math.abs(ref.values[0]),
        `${factor}: λ${i}`,
      );
    }
    assertOrthonormalCols(vectors, 1e-12, `${factor}: V`);
  }
});
