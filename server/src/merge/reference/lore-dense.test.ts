import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Matrix } from "ml-matrix";
import { assertClose } from "../testing/assert-close.ts";
import { randomModuleGroup } from "../testing/random-modules.ts";
import { loreDense, loreObjective, loreRankLimit, nuclearNorm, svt } from "./lore-dense.ts";
import { denseTaskVectors, flatten, thinSvd, weightedSum } from "./task-vectors.ts";

const g = randomModuleGroup({ seed: 31, dIn: 9, dOut: 6, ranks: [2, 3, 2] });
const thetas = denseTaskVectors(g);
const n = thetas.length;
const mean = weightedSum(
  thetas,
  thetas.map(() => 1 / n),
);
const sum = weightedSum(
  thetas,
  thetas.map(() => 1),
);
const close = { rtol: 1e-10, atol: 1e-12 };

describe("svt", () => {
  it("soft-thresholds singular values, optionally capping the rank", () => {
    const d = new Matrix([
      [0, 5, 0, 0],
      [-1, 0, 0, 0],
      [0, 0, 3, 0],
    ]);
    assertClose(flatten(svt(d, 2)), [0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0], close);
    assertClose(flatten(svt(d, 0.5, 1)), [0, 4.5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], close);
    assertClose([nuclearNorm(d)], [9], close);
  });
});

describe("loreDense", () => {
  it("with μ = 0 and one iteration gives θ₀ = mean, δ_i = Θ_i − mean, θ₀ + Σδ_i = ΣΘ_i − (n−1)·mean = mean", () => {
    for (const lambda of [1, 2.5]) {
      const r = loreDense(g, { mu: 0, iters: 1, lambda });
      assert.equal(r.iterations, 1);
      assertClose(flatten(r.theta0), flatten(mean), close);
      r.deltas.forEach((d, i) => {
        assertClose(flatten(d), flatten(weightedSum([thetas[i], mean], [1, -1])), {
          ...close,
          what: `δ_${i}`,
        });
      });
      // Σ δ_i = 0, so the result is the mean for every λ.
      assertClose(flatten(r.merged), flatten(weightedSum([sum, mean], [1, -(n - 1)])), close);
      assertClose(flatten(r.merged), flatten(mean), close);
      assert.ok(r.objective < 1e-20);
    }
  });

  it("with huge μ has δ_i = 0 and θ* = mean, stopping on the second iteration", () => {
    const r = loreDense(g, { mu: 1e6, iters: 50, lambda: 3 });
    assert.equal(r.iterations, 2);
    for (const d of r.deltas) assert.equal(Math.max(...flatten(d).map(Math.abs)), 0);
    assertClose(flatten(r.merged), flatten(mean), close);
  });

  it("descends its objective monotonically and converges to a coordinate-wise fixed point", () => {
    const mu = 0.3;
    const r = loreDense(g, { mu, iters: 2000, tol: 1e-12 });
    assert.ok(r.iterations > 2 && r.iterations < 2000, `iterations ${r.iterations}`);
    for (let j = 1; j < r.objectives.length; j++) {
      assert.ok(r.objectives[j] <= r.objectives[j - 1] * (1 + 1e-12), `objective rose at ${j}`);
    }
    // Fixed point: θ₀ = mean(Θ_i − δ_i) and δ_i = SVT(Θ_i − θ₀; μ).
    const resid = thetas.map((t, i) => weightedSum([t, r.deltas[i]], [1, -1]));
    const theta0 = weightedSum(
      resid,
      resid.map(() => 1 / n),
    );
    assertClose(flatten(theta0), flatten(r.theta0), { atol: 1e-8, what: "θ₀ fixed point" });
    r.deltas.forEach((d, i) => {
      const again = svt(weightedSum([thetas[i], r.theta0], [1, -1]), mu);
      assertClose(flatten(again), flatten(d), { atol: 1e-8, what: `δ_${i} fixed point` });
    });
    // Better than the trivial point (mean, δ = 0), and the shrinkage is real.
    const trivial = loreObjective(
      mean,
      thetas.map(() => Matrix.zeros(6, 9)),
      thetas,
      mu,
    );
    assert.ok(r.objective < trivial);
    assert.ok(r.deltas.some((d) => thinSvd(d).s.filter((s) => s > 1e-12).length < 6));
    assertClose(
      flatten(r.merged),
      flatten(weightedSum([r.theta0, ...r.deltas], [1, ...r.deltas.map(() => 1)])),
      close,
    );
  });

  it("caps each δ_i's rank at ceil(ρ · min(dOut, dIn))", () => {
    assert.equal(loreRankLimit(0.25, 6, 9), 2);
    assert.throws(() => loreRankLimit(0, 6, 9), /rankCap/);
    const r = loreDense(g, { mu: 0, iters: 5, rankCap: 0.25 });
    for (const d of r.deltas) {
      const s = thinSvd(d).s;
      assert.ok(s[1] > 1e-6, "rank 2 expected");
      assert.ok(s[2] < 1e-10 * s[0], `rank above 2: ${s}`);
    }
  });
});
