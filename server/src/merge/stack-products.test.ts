import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { activate, loadableBackends } from "../testing/backends.ts";
import { columnCoefficients, stackTerms } from "./factor-stack.ts";
import { type F32Mat, f32 } from "./kernels/device-matmul.ts";
import { stackCombination, stackProducts } from "./stack-products.ts";
import { assertNearF32, product64, randomF32 as randomMatrix } from "./testing/f32-products.ts";

const randomF32 = (rows: number, cols: number, seed: number) =>
  randomMatrix(rows, cols, seed, "stack-products-test");

function assertNear(got: F32Mat, want: Float64Array, what: string): void {
  assertNearF32(got, got.rows, got.cols, want, what);
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

    test("products over many chunks of columns, and a term wider than a chunk, equal those of the built stack", () => {
      // 40 terms of rank 8 (320 columns: two chunks) and one of rank 300 (a chunk of its own).
      const many = [...Array(40).fill(8), 300, 3].map((rank, i) => ({
        client: i,
        rank,
        b: randomF32(dOut, rank, 100 + i).data,
        a: randomF32(rank, dIn, 200 + i).data,
        scale: 1 + i / 10,
      }));
      const stack = stackTerms("layers.1.q_proj", dOut, dIn, many.length, many);
      const ops = stackProducts(stack);
      const R = stack.width;
      assertNear(ops.timesP(randomF32(R, 3, 5)), product64(stack.p, randomF32(R, 3, 5)), "P·X");
      assertNear(ops.fromQ(randomF32(2, R, 6)), product64(randomF32(2, R, 6), stack.q), "X·Q");
      const coef = columnCoefficients(
        stack,
        many.map((_, i) => (i % 3) - 0.5),
      );
      const diagTimesQ = f32(
        R,
        dIn,
        Float32Array.from(stack.q.data, (v, i) => v * coef[Math.floor(i / dIn)]),
      );
      assertNear(stackCombination(stack, coef), product64(stack.p, diagTimesQ), "P·diag(c)·Q");
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
