import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Matrix } from "ml-matrix";
import { assertClose } from "../testing/assert-close.ts";
import { denseOf, randomModuleGroup, withZeroClient } from "../testing/random-modules.ts";
import { fromDense, fromObjective, fromWeights } from "./from-dense.ts";
import { denseTaskVectors, flatten, frob2 } from "./task-vectors.ts";

const g = randomModuleGroup({ seed: 21, dIn: 20, dOut: 12, ranks: [2, 4, 3], scalings: [1, 0.25, 3] });
const thetas = denseTaskVectors(g);
const norms = thetas.map((t) => Math.sqrt(frob2(t)));

describe("fromWeights", () => {
  it("is ‖Θ_i‖^k normalised", () => {
    const w = fromWeights(norms, 2);
    const total = norms.reduce((acc, x) => acc + x * x, 0);
    assertClose(
      w,
      norms.map((x) => (x * x) / total),
      { rtol: 1e-14 },
    );
  });

  it("gives zero-norm clients weight 0 even for k = 0, and uniform weights when all are 0", () => {
    assert.deepEqual(fromWeights([2, 0, 5], 0), [0.5, 0, 0.5]);
    assert.deepEqual(fromWeights([0, 0], 1), [0.5, 0.5]);
  });
});

describe("fromDense", () => {
  it("with k = 0 is the mean", () => {
    const mean = new Float64Array(12 * 20);
    for (let i = 0; i < 3; i++) {
      const theta = denseOf(g, i);
      for (let e = 0; e < mean.length; e++) mean[e] += theta[e] / 3;
    }
    assertClose(flatten(fromDense(g, { k: 0 }).merged), mean, { rtol: 1e-12, atol: 1e-15 });
  });

  it("with one client returns Θ_1 (and a zero client changes nothing for k > 0 or k = 0)", () => {
    const one = { ...g, clients: [g.clients[1]] };
    const r = fromDense(one, { k: 0.9 });
    assert.deepEqual(r.weights, [1]);
    assertClose(flatten(r.merged), denseOf(one, 0), { rtol: 1e-12, atol: 1e-15 });
    assert.equal(r.objective, 0);
    const withZero = fromDense(withZeroClient(one), { k: 0 });
    assert.deepEqual(withZero.weights, [1, 0]);
    assertClose(flatten(withZero.merged), denseOf(one, 0), { rtol: 1e-12, atol: 1e-15 });
  });

  it("the closed form minimises Σ ŵ_i ‖X − Θ_i‖², and α scales only the result", () => {
    const r = fromDense(g, { k: 1, scale: 0.7 });
    assertClose(flatten(r.merged), flatten(Matrix.mul(r.closedForm, 0.7)), { rtol: 1e-14 });
    assert.equal(r.residual, 0);
    assert.ok(Math.abs(r.objective - fromObjective(r.closedForm, thetas, r.weights)) <= 1e-14 * r.objective);
    for (const t of [0.9, 1.1]) {
      assert.ok(fromObjective(Matrix.mul(r.closedForm, t), thetas, r.weights) > r.objective);
    }
  });

  it("at rank r decomposes as objective(M) + Σ_{j>r} σ_j² (Eckart–Young)", () => {
    const full = fromDense(g, { k: 0.9 });
    const low = fromDense(g, { k: 0.9, rank: 3 });
    assert.ok(low.factors !== null);
    assert.equal(low.factors.b.columns, 3);
    assertClose([low.objective], [full.objective + low.residual], { rtol: 1e-10 });
    assert.ok(low.residual > 0);
    // A random rank-3 perturbation of the optimum is worse.
    const bumped = Matrix.add(low.unscaled, Matrix.mul(low.factors.b.mmul(low.factors.a), 0.01));
    assert.ok(fromObjective(bumped, thetas, low.weights) > low.objective);
  });
});
