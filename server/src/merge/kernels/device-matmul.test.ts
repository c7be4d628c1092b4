import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { activate, loadableBackends } from "../../testing/backends.ts";
import {
  assertNearF32,
  product64,
  randomF32 as randomMatrix,
  transposedF32,
} from "../testing/f32-products.ts";
import { f32, gemm, gemmNT, gemmTN, resident } from "./device-matmul.ts";

const randomF32 = (rows: number, cols: number, seed: number) =>
  randomMatrix(rows, cols, seed, "device-matmul-test");
const transposed = transposedF32;
const assertNear = assertNearF32;

for (const backend of await loadableBackends()) {
  describe(`matmul device on ${backend}`, () => {
    before(() => activate(backend));

    test("gemm equals the float64 product, for tall, wide and thin shapes", () => {
      for (const [m, k, n] of [
        [37, 5, 11],
        [3, 64, 2],
        [1, 1, 1],
        [40, 8, 40],
      ]) {
        const a = randomF32(m, k, m);
        const b = randomF32(k, n, n + 100);
        assertNear(gemm(a, b), m, n, product64(a, b), `${m}×${k}·${k}×${n}`);
      }
    });

    test("gemm of empty shapes gives zeros of the right shape, and mismatched shapes throw", () => {
      const z = gemm(f32(3, 0), f32(0, 4));
      assert.equal(z.rows, 3);
      assert.equal(z.cols, 4);
      assert.ok(z.data.every((v) => v === 0));
      assert.throws(() => gemm(f32(2, 3), f32(2, 3)), /gemm: 2×3 · 2×3/);
    });

    test("a resident matrix multiplies from both sides and returns the asked Gram", () => {
      const m = randomF32(12, 9, 1);
      const sq = randomF32(9, 9, 2);
      const x = randomF32(9, 4, 3);
      const y = randomF32(5, 12, 4);
      const r = resident(m);
      const rs = resident(sq);
      try {
        assertNear(r.times(x), 12, 4, product64(m, x), "times");
        assertNear(r.timesFrom(y), 5, 9, product64(y, m), "timesFrom");
        const ptp = r.timesWithGram(x, "ptp");
        const p = product64(m, x);
        const pf = f32(12, 4, Float32Array.from(p));
        assertNear(ptp.product, 12, 4, p, "product");
        assertNear(ptp.gram, 4, 4, product64(transposed(pf), pf), "PᵀP");
        const xtp = rs.timesWithGram(x, "xtp");
        const q = f32(9, 4, Float32Array.from(product64(sq, x)));
        assertNear(xtp.gram, 4, 4, product64(transposed(x), q), "xᵀP");
        assert.throws(() => r.timesWithGram(x, "xtp"), /square/);
        assert.throws(() => r.times(y), /resident/);
      } finally {
        r.dispose();
        rs.dispose();
      }
    });
  });
}

for (const backend of await loadableBackends()) {
  test(`gemmTN and gemmNT equal the products with explicit transposes on ${backend}`, async () => {
    await activate(backend);
    const a = randomF32(13, 6, 21);
    const b = randomF32(13, 4, 22);
    const c = randomF32(5, 6, 23);
    let asked = 0;
    const tn = gemmTN(a, b, () => {
      asked++;
      return transposed(a);
    });
    assertNear(tn, 6, 4, product64(transposed(a), b), "AᵀB");
    const nt = gemmNT(a, c, () => {
      asked++;
      return transposed(c);
    });
    assertNear(nt, 13, 5, product64(a, transposed(c)), "ACᵀ");
    // A device with transposed products never asks for the copies.
    assert.equal(asked, backend === "blas" ? 0 : 2);
    assert.throws(() => gemmTN(a, c, () => transposed(a)), /gemm/);
  });
}
