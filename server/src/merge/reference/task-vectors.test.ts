import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Matrix } from "ml-matrix";
import { assertClose } from "../testing/assert-close.ts";
import { denseOf, randomModuleGroup } from "../testing/random-modules.ts";
import { denseTaskVector, denseTaskVectors, flatten, frob2, thinSvd, truncatedSvd } from "./task-vectors.ts";

describe("denseTaskVector", () => {
  it("computes s · B · A on a hand example", () => {
    // B = [1; 2; 3] (3 × 1), A = [1 0 -1 2] (1 × 4), s = 0.5.
    const theta = denseTaskVector(
      { a: Float32Array.from([1, 0, -1, 2]), b: Float32Array.from([1, 2, 3]), rank: 1, scaling: 0.5 },
      3,
      4,
    );
    assert.deepEqual(theta.to2DArray(), [
      [0.5, 0, -0.5, 1],
      [1, 0, -1, 2],
      [1.5, 0, -1.5, 3],
    ]);
  });

  it("agrees with the test helper denseOf for mixed ranks", () => {
    const g = randomModuleGroup({ seed: 3, dIn: 9, dOut: 6, ranks: [1, 2, 4] });
    denseTaskVectors(g).forEach((t, i) => {
      assertClose(flatten(t), denseOf(g, i), { rtol: 1e-14, atol: 1e-15, what: `client ${i}` });
    });
  });

  it("rejects factors of the wrong length", () => {
    assert.throws(
      () => denseTaskVector({ a: new Float32Array(5), b: new Float32Array(3), rank: 1, scaling: 1 }, 3, 4),
      /A has 5 entries/,
    );
  });
});

describe("frob2", () => {
  it("sums squares", () => {
    assert.equal(
      frob2(
        new Matrix([
          [1, -2],
          [3, 0],
        ]),
      ),
      14,
    );
  });
});

describe("truncatedSvd", () => {
  const g = randomModuleGroup({ seed: 11, dIn: 20, dOut: 12, ranks: [3, 4, 5] });
  const m = denseTaskVectors(g).reduce((acc, t) => Matrix.add(acc, t), Matrix.zeros(12, 20));

  it("reconstructs M at full rank, and clamps ranks beyond min(dOut, dIn)", () => {
    for (const r of [12, 40]) {
      const t = truncatedSvd(m, r);
      assert.equal(t.b.columns, 12);
      assert.equal(t.a.rows, 12);
      assertClose(flatten(t.b.mmul(t.a)), flatten(m), { rtol: 1e-10, atol: 1e-12, what: `rank ${r}` });
    }
  });

  it("has residual equal to the sum of the dropped σ², and a balanced split", () => {
    const full = thinSvd(m).s;
    for (const r of [1, 3, 7]) {
      const t = truncatedSvd(m, r);
      assert.deepEqual(t.spectrum, full);
      const dropped = full.slice(r).reduce((acc, s) => acc + s * s, 0);
      const residual = frob2(Matrix.sub(t.b.mmul(t.a), m));
      assert.ok(Math.abs(residual - dropped) <= 1e-10 * frob2(m), `rank ${r}: ${residual} vs ${dropped}`);
      // BᵀB = AAᵀ = diag(σ_1..σ_r).
      const diag = Matrix.diag(t.s);
      assertClose(flatten(t.b.transpose().mmul(t.b)), flatten(diag), { atol: 1e-10, what: "BᵀB" });
      assertClose(flatten(t.a.mmul(t.a.transpose())), flatten(diag), { atol: 1e-10, what: "AAᵀ" });
    }
  });

  it("returns singular values in non-increasing order, with a known spectrum", () => {
    // diag(1, 5, 3) padded to 3 × 4 has singular values 5, 3, 1.
    const d = new Matrix([
      [1, 0, 0, 0],
      [0, 5, 0, 0],
      [0, 0, 3, 0],
    ]);
    const t = truncatedSvd(d, 2);
    assertClose(t.spectrum, [5, 3, 1], { rtol: 1e-12 });
    assertClose(flatten(t.b.mmul(t.a)), [0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 3, 0], { atol: 1e-12 });
  });

  it("supports rank 0 and rejects negative ranks", () => {
    const t = truncatedSvd(m, 0);
    assert.equal(frob2(t.b.mmul(t.a)), 0);
    assert.throws(() => truncatedSvd(m, -1), /non-negative integer/);
  });
});
