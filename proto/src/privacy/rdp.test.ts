import assert from "node:assert/strict";
import { test } from "node:test";
import { logAdd, logErfc, logSub } from "./log-math.ts";
import { composedRdp, DEFAULT_ORDERS, epsilonOf, noiseFor, privacySpent, rdpOfStep } from "./rdp.ts";

test("log erfc matches tabulated erfc, and stays finite where erfc underflows", () => {
  const table: [number, number][] = [
    [0, 1],
    [0.5, 0.4795001221869534],
    [1, 0.15729920705028513],
    [2, 0.004677734981047266],
    [3, 2.209049699858544e-5],
    [5, 1.5374597944280349e-12],
    [10, 2.088487583762545e-45],
    [-1, 1.8427007929497148],
  ];
  for (const [x, erfc] of table) assert.ok(Math.abs(Math.exp(logErfc(x)) / erfc - 1) < 1e-13, `erfc(${x})`);
  // erfc(x) ~ e^{-x²} / (x √π) (1 − 1/(2x²) + …) far in the tail.
  const x = 40;
  const asymptotic =
    -x * x - Math.log(x * Math.sqrt(Math.PI)) + Math.log1p(-1 / (2 * x * x) + 3 / (4 * x ** 4));
  assert.ok(Math.abs(logErfc(x) - asymptotic) < 1e-9);
  assert.equal(logAdd(Math.log(2), Math.log(3)), Math.log(5));
  assert.ok(Math.abs(logSub(Math.log(5), Math.log(3)) - Math.log(2)) < 1e-15);
  assert.equal(logSub(1, 1), Number.NEGATIVE_INFINITY);
  assert.throws(() => logSub(0, 1), RangeError);
});

test("Opacus's reference: q = 0.04, σ = 1.5, 2,250 steps, δ = 1e-5 give ε = 7.32911117143", () => {
  const spent = epsilonOf({ q: 0.04, noiseMultiplier: 1.5, steps: 2250 }, 1e-5);
  assert.ok(Math.abs(spent.epsilon - 7.32911117143) < 1e-7, `ε = ${spent.epsilon}`);
  assert.ok(DEFAULT_ORDERS.includes(spent.order));
  assert.equal(DEFAULT_ORDERS.length, 99 + 52);
  assert.deepEqual(
    [DEFAULT_ORDERS[0], DEFAULT_ORDERS[98], DEFAULT_ORDERS[99], DEFAULT_ORDERS.at(-1)],
    [1.1, 10.9, 12, 63],
  );
});

test("Opacus's noise multipliers: ε = 8, q = 0.04, δ = 1e-5 over 2,250 steps ≈ 1.416, over 2,000 ≈ 1.3562", () => {
  const z90 = noiseFor({ epsilon: 8, delta: 1e-5, q: 0.04, steps: 2250 });
  assert.ok(Math.abs(z90 - 1.416) < 5e-4, `z = ${z90}`);
  const z2000 = noiseFor({ epsilon: 8, delta: 1e-5, q: 0.04, steps: 2000 });
  assert.ok(Math.abs(z2000 - 1.3562) < 1e-4, `z = ${z2000}`);
  // The smallest that meets the budget: a little less noise spends more than 8.
  assert.ok(epsilonOf({ q: 0.04, noiseMultiplier: z90, steps: 2250 }, 1e-5).epsilon <= 8);
  assert.ok(epsilonOf({ q: 0.04, noiseMultiplier: z90 - 1e-3, steps: 2250 }, 1e-5).epsilon > 8);
  assert.throws(
    () => noiseFor({ epsilon: 1e-3, delta: 1e-5, q: 1, steps: 1000 }),
    /no noise multiplier up to 2000/,
  );
});

test("the special cases: no sampling spends nothing, no noise is no privacy, full sampling is the Gaussian mechanism", () => {
  assert.equal(rdpOfStep(0, 1, 2), 0);
  assert.equal(rdpOfStep(0.1, 0, 2), Number.POSITIVE_INFINITY);
  assert.equal(rdpOfStep(1, 2, 3), 3 / 8);
  // Integer and fractional orders agree where they meet (α → 2 from the fractional side).
  assert.ok(Math.abs(rdpOfStep(0.05, 1.1, 2) - rdpOfStep(0.05, 1.1, 2.0000001)) < 1e-5);
  // RDP adds up over steps and kinds of steps.
  const one = composedRdp([{ q: 0.01, noiseMultiplier: 1, steps: 1 }]);
  const mixed = composedRdp([
    { q: 0.01, noiseMultiplier: 1, steps: 3 },
    { q: 0.01, noiseMultiplier: 1, steps: 2 },
  ]);
  for (const [k, v] of mixed.entries()) assert.ok(Math.abs(v - 5 * one[k]) < 1e-12 * Math.max(1, v));
  assert.equal(
    privacySpent(
      DEFAULT_ORDERS.map(() => Number.POSITIVE_INFINITY),
      1e-5,
    ).epsilon,
    Number.POSITIVE_INFINITY,
  );
  assert.throws(() => privacySpent([1], 1e-5), /1 RDP values for 151 orders/);
});
