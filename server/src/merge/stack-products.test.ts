import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { columnCoefficients, stackTerms } from "./factor-stack.ts";
import { type F32Mat, f32 } from "./kernels/device-matmul.ts";
import { normalAt, streamKey } from "./random.ts";
import { stackCombination, stackProducts } from "./stack-products.ts";
import { activate, loadableBackends } from "./testing/backends.ts";

function randomF32(rows: number, cols: number, seed: number): F32Mat {
  const key = streamKey(seed, "stack-products-test");
  return f32(
    rows,
    cols,
    Float32Array.from({ length: rows * cols }, (_, i) => normalAt(key, i)),
  );
}

/** `A · B` in float64. */
function product64(a: F32Mat, b: F32Mat): Float64Array {
  const out = new Float64Array(a.rows * b.cols);
  for (let i = 0; i < a.rows; i++)
    for (let k = 0; k < a.cols; k++)
      for (let j = 0; j < b.cols; j++) out[i * b.cols + j] += a.data[i * a.cols + k] * b.data[k * b.cols + j];
  return out;
}

function assertNear(got: F32Mat, want: Float64Array, what: string): void {
  assert.equal(got.data.length, want.length, `${what}: size`);
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got.data[i] - want[i]));
  assert.ok(worst < 1e-4, `${what}: max |error| ${worst}`);
}

const dOut = 14;
const dIn = 11;
// Three clients' terms, one of rank 0, with scales.
const ranks = [3, 0, 2];
const terms = ranks.map((rank, i) => ({
  client: i,
  rank,
  b: randomF32(dOut, rank, 10 + i).data,
  a: randomF32(rank, dIn, 20 + i).data,
  scale: 0.5 + i,
}));

for (const backend of await loadableBackends()) {
  describe(`stack products on ${backend}`, () => {
    before(() => activate(backend));

    test("Q·Y, P·X, X·P and X·Q equal the products with the built stack", () => {
      const stack = stackTerms("layers.0.q_proj", dOut, dIn, 3, terms);
      const ops = stackProducts(stack);
      try {
        const R = stack.width;
        const y = randomF32(dIn, 4, 1);
        const x = randomF32(R, 4, 2);
        const xl = randomF32(4, dOut, 3);
        const xr = randomF32(4, R, 4);
        assertNear(ops.timesQ(y), product64(stack.q, y), "Q·Y");
        assertNear(ops.timesP(x), product64(stack.p, x), "P·X");
        assertNear(ops.fromP(xl), product64(xl, stack.p), "X·P");
        assertNear(ops.fromQ(xr), product64(xr, stack.q), "X·Q");
        assert.throws(() => ops.timesP(y), /P·X of a 11×4 block/);
      } finally {
        ops.dispose();
      }
    });

    test("the combination P·diag(c)·Q equals the dense sum, for per-client and per-column coefficients", () => {
      const stack = stackTerms("layers.0.q_proj", dOut, dIn, 3, terms);
      const diagTimesQ = (c: Float64Array) =>
        f32(
          stack.width,
          dIn,
          Float32Array.from(stack.q.data, (v, i) => v * c[Math.floor(i / dIn)]),
        );
      const perClient = columnCoefficients(stack, [0.2, -1, 3]);
      assertNear(stackCombination(stack, perClient), product64(stack.p, diagTimesQ(perClient)), "per client");
      const perColumn = Float64Array.from({ length: stack.width }, (_, j) => j - 1.5);
      assertNear(stackCombination(stack, perColumn), product64(stack.p, diagTimesQ(perColumn)), "per column");
    });
  });
}
