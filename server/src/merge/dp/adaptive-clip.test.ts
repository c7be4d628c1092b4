import assert from "node:assert/strict";
import { test } from "node:test";
import { nextClipNorm, noisyUnclippedFraction, updatesNoiseMultiplier } from "./adaptive-clip.ts";

test("the updates' noise multiplier leaves the pair costing exactly z", () => {
  for (const [z, sb] of [
    [1, 2],
    [1.1, 0.6],
    [0.5, 5],
  ]) {
    const zd = updatesNoiseMultiplier(z, sb);
    assert.ok(zd > z);
    assert.ok(Math.abs(zd ** -2 + (2 * sb) ** -2 - z ** -2) < 1e-12);
  }
  assert.equal(updatesNoiseMultiplier(0, 1), 0);
  assert.throws(() => updatesNoiseMultiplier(1, 0.5), /must exceed noise_multiplier \/ 2/);
});

test("the clip norm steps geometrically towards the target quantile", () => {
  const a = { targetQuantile: 0.5, clipLr: 0.2 };
  assert.equal(nextClipNorm(2, 0.5, a), 2);
  assert.ok(Math.abs(nextClipNorm(1, 0, a) - Math.exp(0.1)) < 1e-15, "all clipped: grows");
  assert.ok(Math.abs(nextClipNorm(1, 1, a) - Math.exp(-0.1)) < 1e-15, "none clipped: shrinks");
});

test("the noised fraction is the count plus N(0, σ_b²) over m, the same for the same key", () => {
  const norms = [0.5, 1.5, 0.9, 3, 0.1];
  const key = (i: number) => i.toString(16).padStart(64, "0");
  assert.equal(noisyUnclippedFraction(norms, 1, 0.5, key(7)), noisyUnclippedFraction(norms, 1, 0.5, key(7)));
  // Over many keys: mean 3/5, standard deviation σ_b / m (fixed keys, 4 % tolerance on the std).
  const n = 4000;
  const draws = Array.from({ length: n }, (_, i) => noisyUnclippedFraction(norms, 1, 0.5, key(i + 1)));
  const mean = draws.reduce((s, x) => s + x, 0) / n;
  const std = Math.sqrt(draws.reduce((s, x) => s + (x - mean) ** 2, 0) / (n - 1));
  assert.ok(Math.abs(mean - 0.6) < 0.01, `mean ${mean}`);
  assert.ok(Math.abs(std / (0.5 / 5) - 1) < 0.04, `std ${std}`);
});
