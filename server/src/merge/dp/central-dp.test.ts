import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { selectBackend } from "../../compute/backend.ts";
import { mergeModule } from "../engine.ts";
import { MergeOptionsError } from "../errors.ts";
import { resolveOptions } from "../options.ts";
import { centralDpDense, flatten } from "../reference/index.ts";
import { relFrobError } from "../testing/assert-close.ts";
import { denseOfMerged } from "../testing/dense-of.ts";
import { randomModuleGroup } from "../testing/random-modules.ts";
import type { ModuleGroup } from "../types.ts";
import { clipFactors } from "./clip.ts";
import { gaussianNoise } from "./gaussian-noise.ts";

const KEY = "5e".repeat(32);
const group = randomModuleGroup({
  seed: 11,
  dIn: 48,
  dOut: 40,
  ranks: [2, 3, 4, 2],
  name: "layers.0.q_proj",
});
/** Clip factors of a bound that clips two of the four clients. */
const factors = [1, 0.5, 0.8, 1];

const dpOpts = (noiseMultiplier: number, rank: number, noiseKey = KEY) =>
  resolveOptions({
    method: "fedavg",
    rank,
    dp: { clipNorm: 0.3, noiseMultiplier, clipFactors: factors, noiseKey },
  });

describe("central DP of one module", () => {
  before(async () => {
    await selectBackend();
  });

  it("with noise multiplier 0 is exactly the clipped uniform mean (at a rank that keeps it all)", () => {
    const r = mergeModule(group, dpOpts(0, 11));
    const want = centralDpDense(group, factors, undefined, 11);
    assert.ok(relFrobError(denseOfMerged(r.merged, group.dOut, group.dIn), flatten(want.mean)) < 1e-5);
    assert.deepEqual(
      r.report.weights,
      factors.map((f) => f / 4),
    );
  });

  it("is the rank-r truncation of the clipped mean plus N(0, (z·C/m)²) noise, drawn from the key and the module", () => {
    const z = 1.1;
    const sigma = (z * 0.3) / 4;
    const r = mergeModule(group, dpOpts(z, 6));
    const noise = gaussianNoise(KEY, group.name, group.dOut, group.dIn, sigma);
    const want = centralDpDense(group, factors, noise.data, 6);
    assert.ok(relFrobError(denseOfMerged(r.merged, group.dOut, group.dIn), flatten(want.product)) < 1e-4);
    assert.equal(r.report.solver, "noisy-stream");
    // The noise is really there: the result is not the noiseless truncation.
    const clean = centralDpDense(group, factors, undefined, 6);
    assert.ok(relFrobError(flatten(want.product), flatten(clean.product)) > 0.05);
  });

  it("draws the same noise from the same key and module, other noise otherwise", () => {
    const a = mergeModule(group, dpOpts(1, 4));
    const b = mergeModule(group, dpOpts(1, 4));
    const c = mergeModule(group, dpOpts(1, 4, "a1".repeat(32)));
    assert.deepEqual(a.merged.b, b.merged.b);
    assert.notDeepEqual(a.merged.b, c.merged.b);
    const n1 = gaussianNoise(KEY, "m1", 200, 500, 2);
    const n2 = gaussianNoise(KEY, "m2", 200, 500, 2);
    assert.notDeepEqual(n1.data.subarray(0, 8), n2.data.subarray(0, 8));
    let s = 0;
    let s2 = 0;
    for (const x of n1.data) {
      s += x;
      s2 += x * x;
    }
    const mean = s / n1.data.length;
    const std = Math.sqrt(s2 / n1.data.length - mean * mean);
    assert.ok(Math.abs(mean) < 0.02 && Math.abs(std - 2) < 0.02, `mean ${mean}, std ${std}`);
  });

  it("moves the clipped mean by at most 2C/m when one client is replaced, however large its update", () => {
    const C = 0.3;
    const m = group.clients.length;
    const norms2 = group.clients.map((_, i) => frob2(group, i));
    const huge: ModuleGroup = {
      ...group,
      clients: group.clients.map((c, i) => (i === 1 ? { ...c, scaling: c.scaling * 1e4 } : c)),
    };
    const hugeNorms2 = huge.clients.map((_, i) => frob2(huge, i));
    const merged = (g: ModuleGroup, f: number[]) =>
      denseOfMerged(
        mergeModule(
          g,
          resolveOptions({
            method: "fedavg",
            rank: 11,
            dp: { clipNorm: C, noiseMultiplier: 0, clipFactors: f, noiseKey: KEY },
          }),
        ).merged,
        g.dOut,
        g.dIn,
      );
    const a = merged(group, clipFactors(norms2, C));
    const b = merged(huge, clipFactors(hugeNorms2, C));
    let d2 = 0;
    for (let i = 0; i < a.length; i++) d2 += (a[i] - b[i]) ** 2;
    assert.ok(Math.sqrt(d2) <= (2 * C) / m + 1e-6, `moved by ${Math.sqrt(d2)}, bound ${(2 * C) / m}`);
  });

  it("refuses what the noise would not cover: other methods, full rank, a norm bound", () => {
    const dp = { clipNorm: 1, noiseMultiplier: 1, clipFactors: factors, noiseKey: KEY };
    assert.throws(
      () => mergeModule(group, resolveOptions({ method: "from", rank: 4, dp })),
      MergeOptionsError,
    );
    assert.throws(
      () => mergeModule(group, resolveOptions({ method: "fedavg", rank: "full", dp })),
      /needs an output rank/,
    );
    assert.throws(
      () => mergeModule(group, resolveOptions({ method: "fedavg", rank: 4, normBound: 1, dp })),
      /leave the norm bound out/,
    );
  });
});

function frob2(g: ModuleGroup, i: number): number {
  const c = g.clients[i];
  let s = 0;
  for (let r = 0; r < g.dOut; r++)
    for (let k = 0; k < g.dIn; k++) {
      let v = 0;
      for (let j = 0; j < c.rank; j++) v += c.b[r * c.rank + j] * c.a[j * g.dIn + k];
      s += (c.scaling * v) ** 2;
    }
  return s;
}
