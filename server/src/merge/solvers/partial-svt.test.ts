import assert from "node:assert/strict";
import { describe } from "node:test";
import { Matrix } from "ml-matrix";
import { testEach as test } from "../../testing/decompositions.ts";
import { denseMatmulNT, type Mat, transpose } from "../linalg/index.ts";
import { normalAt, streamKey } from "../random.ts";
import { svt } from "../reference/index.ts";
import {
  type LowRankMinusDense,
  orthonormalRows,
  type PartialSvtOptions,
  partialSvt,
} from "./partial-svt.ts";

function randomMat(rows: number, cols: number, seed: number, scale = 1): Mat {
  const key = streamKey(seed, "partial-svt-test");
  const data = new Float64Array(rows * cols);
  for (let i = 0; i < data.length; i++) data[i] = scale * normalAt(key, i);
  return { rows, cols, data };
}

/** `X = L Rᵀ − T`, with `T` of entries `tScale · N(0,1)` (none for 0). */
function operator(kp: number, kq: number, r: number, tScale: number, seed: number): LowRankMinusDense {
  const l = randomMat(kp, r, seed, 1 / Math.sqrt(kp));
  const rm = randomMat(kq, r, seed + 1, 1 / Math.sqrt(kq));
  const t = tScale === 0 ? undefined : randomMat(kp, kq, seed + 2, tScale);
  const dense = dense0(l, rm, t);
  let norm2 = 0;
  for (const v of dense.data) norm2 += v * v;
  return { l, lt: transpose(l), r: rm, rt: transpose(rm), t, tt: t && transpose(t), norm2 };
}

function dense0(l: Mat, r: Mat, t: Mat | undefined): Mat {
  const d = denseMatmulNT(l, r);
  if (t !== undefined) for (let j = 0; j < d.data.length; j++) d.data[j] -= t.data[j];
  return d;
}

const base: Omit<PartialSvtOptions, "mu"> = {
  cap: Number.POSITIVE_INFINITY,
  block: 10,
  start: undefined,
  key: 7,
  eps: 1e-11,
  maxSteps: 40,
};

function denseOf(f: { udt: Mat; vt: Mat }): number[] {
  return Array.from(denseMatmulNT(transpose(f.udt), transpose(f.vt)).data);
}

function refMatrix(m: Mat): Matrix {
  return Matrix.from1DArray(m.rows, m.cols, Array.from(m.data));
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe("partialSvt", () => {
  for (const [what, tScale, mu] of [
    ["a rank-4 core (T = 0)", 0, 0.05],
    ["a rank-4 core minus a small dense T", 2e-4, 0.05],
  ] as const) {
    test(`equals the dense SVT of ${what}`, () => {
      const x = operator(40, 36, 4, tScale, 3);
      const got = partialSvt(x, { ...base, mu });
      assert.ok(got, "certified");
      const ref = svt(refMatrix(dense0(x.l, x.r, x.t)), mu);
      assert.ok(maxAbsDiff(denseOf(got), ref.to1DArray()) < 1e-10);
      assert.equal(got.udt.rows, 4);
      // ‖X − SVT(X)‖² = ‖X‖² − shrunk2
      const resid = dense0(x.l, x.r, x.t).data.map((v, i) => v - denseOf(got)[i]);
      const r2 = resid.reduce((s, v) => s + v * v, 0);
      assert.ok(Math.abs(r2 - (x.norm2 - got.shrunk2)) < 1e-10 * x.norm2);
    });
  }

  test("keeps at most `cap` values, the largest", () => {
    const x = operator(40, 36, 4, 0, 5);
    const got = partialSvt(x, { ...base, mu: 0.01, cap: 2 });
    assert.ok(got);
    assert.equal(got.udt.rows, 2);
    const ref = svt(refMatrix(dense0(x.l, x.r, x.t)), 0.01, 2);
    assert.ok(maxAbsDiff(denseOf(got), ref.to1DArray()) < 1e-10);
  });

  test("warm-starts from a previous basis and converges in fewer steps", () => {
    const x = operator(40, 36, 4, 1e-4, 9);
    const cold = partialSvt(x, { ...base, mu: 0.05, maxSteps: 1 });
    const first = partialSvt(x, { ...base, mu: 0.05 });
    assert.ok(first);
    // One step from the converged basis is enough; from random rows it is not.
    const warm = partialSvt(x, { ...base, mu: 0.05, maxSteps: 1, start: first.basis });
    assert.ok(warm);
    assert.equal(cold, undefined);
  });

  test("refuses (undefined) when more than μ² lies outside the block", () => {
    // A full-rank T whose singular values are all near μ: no block of 10 can certify.
    const x = operator(40, 36, 4, 0.02, 11);
    assert.equal(partialSvt(x, { ...base, mu: 0.05 }), undefined);
  });

  test("orthonormalRows completes a rank-deficient block to orthonormal rows", () => {
    const low = denseMatmulNT(randomMat(6, 2, 13), randomMat(30, 2, 14)); // 6 × 30, rank 2
    const q = orthonormalRows(low);
    assert.equal(q.rows, 6);
    const g = denseMatmulNT(q, q);
    for (let i = 0; i < 6; i++)
      for (let j = 0; j < 6; j++) assert.ok(Math.abs(g.data[i * 6 + j] - (i === j ? 1 : 0)) < 1e-12);
  });
});
