import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Matrix } from "ml-matrix";
import { normalAt, streamKey } from "../random.ts";
import { assertClose } from "../testing/assert-close.ts";
import { randomModuleGroup, withZeroClient } from "../testing/random-modules.ts";
import { dft2, frDense, highPassDense, lowBand, lowMask, signedFrequency } from "./fr-dense.ts";
import { fromWeights } from "./from-dense.ts";
import { denseTaskVectors, flatten, frob2, weightedSum } from "./task-vectors.ts";

function randomMatrix(rows: number, cols: number, seed: number): Matrix {
  const key = streamKey(seed, "fr-test");
  return Matrix.from1DArray(
    rows,
    cols,
    Array.from({ length: rows * cols }, (_, e) => normalAt(key, e)),
  );
}

/** The 2-D DFT as the literal quadruple loop, to check {@link dft2}. */
function literalDft2(x: Matrix): { re: number[]; im: number[] } {
  const m = x.rows;
  const n = x.columns;
  const re: number[] = [];
  const im: number[] = [];
  for (let k = 0; k < m; k++) {
    for (let l = 0; l < n; l++) {
      let sr = 0;
      let si = 0;
      for (let p = 0; p < m; p++) {
        for (let q = 0; q < n; q++) {
          const angle = -2 * Math.PI * ((k * p) / m + (l * q) / n);
          sr += x.get(p, q) * Math.cos(angle);
          si += x.get(p, q) * Math.sin(angle);
        }
      }
      re.push(sr);
      im.push(si);
    }
  }
  return { re, im };
}

const x = randomMatrix(6, 9, 1);
const close = { rtol: 1e-10, atol: 1e-11 };

describe("lowBand", () => {
  it("follows K = floor((√c·m − 1)/2), clamped, with signed frequencies", () => {
    assert.deepEqual(lowBand(8, 0), []);
    assert.deepEqual(lowBand(8, 0.01), [0]);
    assert.deepEqual(lowBand(8, 0.25), [0, 1, 7]); // √.25·8 = 4 → K = 1
    assert.deepEqual(lowBand(20, 0.3), [0, 1, 2, 3, 4, 16, 17, 18, 19]); // √.3·20 ≈ 10.95 → K = 4
    assert.deepEqual(lowBand(4, 0.99), [0, 1, 3]); // K = 1, never the Nyquist index 2
    assert.deepEqual(lowBand(5, 0.99), [0, 1, 4]); // √.99·5 ≈ 4.97 → K = 1
    assert.deepEqual(lowBand(1, 0.5), [0]);
    assert.equal(signedFrequency(4, 8), 4);
    assert.equal(signedFrequency(5, 8), -3);
    assert.throws(() => lowBand(8, 1), /cutoff/);
  });
});

describe("dft2", () => {
  it("equals the literal double sum, and the inverse undoes it", () => {
    const f = dft2({ re: x, im: Matrix.zeros(6, 9) });
    const lit = literalDft2(x);
    assertClose(flatten(f.re), lit.re, { ...close, what: "re" });
    assertClose(flatten(f.im), lit.im, { ...close, what: "im" });
    const back = dft2(f, true);
    assertClose(flatten(back.re), flatten(x), close);
    assertClose(flatten(back.im), new Float64Array(54), close);
  });
});

describe("highPassDense", () => {
  it("is the identity for cutoff 0", () => {
    assertClose(flatten(highPassDense(x, 0)), flatten(x), close);
  });

  it("removes a constant matrix completely for any c > 0", () => {
    const c = Matrix.zeros(6, 9).fill(0.75);
    for (const cutoff of [0.001, 0.1, 0.4, 0.9]) {
      assertClose(flatten(highPassDense(c, cutoff)), new Float64Array(54), {
        atol: 1e-13,
        what: `c=${cutoff}`,
      });
    }
  });

  it("keeps a checkerboard (Nyquist) pattern", () => {
    const board = Matrix.from1DArray(
      8,
      10,
      Array.from({ length: 80 }, (_, e) => ((Math.floor(e / 10) + (e % 10)) % 2 === 0 ? 1 : -1)),
    );
    for (const cutoff of [0.1, 0.5, 0.99]) {
      assertClose(flatten(highPassDense(board, cutoff)), flatten(board), { ...close, what: `c=${cutoff}` });
    }
  });

  it("is the projection X − real(IDFT2(DFT2(X) ⊙ mask)): idempotent and norm-reducing", () => {
    for (const cutoff of [0.1, 0.3]) {
      const once = highPassDense(x, cutoff);
      assertClose(flatten(highPassDense(once, cutoff)), flatten(once), close);
      assert.ok(frob2(once) < frob2(x));
      // Remove the low part explicitly.
      const mask = lowMask(6, 9, cutoff);
      const f = dft2({ re: x, im: Matrix.zeros(6, 9) });
      const lowRe = Matrix.zeros(6, 9);
      const lowIm = Matrix.zeros(6, 9);
      for (let k = 0; k < 6; k++) {
        for (let l = 0; l < 9; l++) {
          lowRe.set(k, l, f.re.get(k, l) * mask.get(k, l));
          lowIm.set(k, l, f.im.get(k, l) * mask.get(k, l));
        }
      }
      const lowPart = dft2({ re: lowRe, im: lowIm }, true).re;
      assertClose(flatten(once), flatten(weightedSum([x, lowPart], [1, -1])), close);
    }
  });

  it("removes a rectangle of (2K_r+1)(2K_c+1) coefficients", () => {
    const mask = lowMask(12, 20, 0.2);
    // √.2·12 ≈ 5.37 → K = 2 (5 rows); √.2·20 ≈ 8.94 → K = 3 (7 cols).
    assert.equal(
      flatten(mask).reduce((acc, v) => acc + v, 0),
      35,
    );
  });
});

describe("frDense", () => {
  const g = randomModuleGroup({ seed: 41, dIn: 9, dOut: 6, ranks: [2, 1, 3] });
  const filtered = denseTaskVectors(g).map((t) => highPassDense(t, 0.3));

  it("combines the filtered task vectors by mean, sum or FroM weights, times scale", () => {
    const mean = frDense(g, { cutoff: 0.3, combine: "mean", scale: 2 });
    assertClose(flatten(mean.merged), flatten(weightedSum(filtered, [2 / 3, 2 / 3, 2 / 3])), close);
    const sum = frDense(g, { cutoff: 0.3, combine: "sum" });
    assertClose(flatten(sum.merged), flatten(weightedSum(filtered, [1, 1, 1])), close);
    const from = frDense(g, { cutoff: 0.3, combine: "from", k: 2 });
    const w = fromWeights(
      filtered.map((t) => Math.sqrt(frob2(t))),
      2,
    );
    assertClose(from.weights, w, close);
    assertClose(flatten(from.merged), flatten(weightedSum(filtered, w)), close);
  });

  it("gives a zero client FroM weight 0, and needs k for FroM", () => {
    const r = frDense(withZeroClient(g), { cutoff: 0.3, combine: "from", k: 0 });
    assert.deepEqual(r.weights.slice(0, 3), [1 / 3, 1 / 3, 1 / 3]);
    assert.equal(r.weights[3], 0);
    assert.throws(() => frDense(g, { cutoff: 0.3, combine: "from" }), /needs k/);
  });
});
