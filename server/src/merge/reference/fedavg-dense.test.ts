import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { assertClose } from "../testing/assert-close.ts";
import { denseOf, randomModuleGroup } from "../testing/random-modules.ts";
import { fedavgCoefficients, fedavgDense } from "./fedavg-dense.ts";
import { fedavgFactorsDense } from "./fedavg-factors-dense.ts";
import { taskArithmeticDense } from "./task-arithmetic-dense.ts";
import { flatten } from "./task-vectors.ts";

const g = randomModuleGroup({ seed: 5, dIn: 9, dOut: 6, ranks: [2, 3, 1] });
const dense = [0, 1, 2].map((i) => denseOf(g, i));

function combine(coeffs: number[]): Float64Array {
  const out = new Float64Array(dense[0].length);
  coeffs.forEach((c, i) => {
    for (let e = 0; e < out.length; e++) out[e] += c * dense[i][e];
  });
  return out;
}

describe("fedavgDense", () => {
  it("with equal (or absent) sample counts is the plain mean", () => {
    const mean = combine([1 / 3, 1 / 3, 1 / 3]);
    assertClose(flatten(fedavgDense(g, [7, 7, 7]).merged), mean, { rtol: 1e-12, atol: 1e-15 });
    assertClose(flatten(fedavgDense(g).merged), mean, { rtol: 1e-12, atol: 1e-15 });
  });

  it("weights by sample counts", () => {
    const r = fedavgDense(g, [1, 3, 0]);
    assert.deepEqual(r.weights, [0.25, 0.75, 0]);
    assertClose(flatten(r.merged), combine([0.25, 0.75, 0]), { rtol: 1e-12, atol: 1e-15 });
  });

  it("rejects bad sample counts", () => {
    assert.throws(() => fedavgCoefficients(3, [1, 2]), /2 sample counts for 3 clients/);
    assert.throws(() => fedavgCoefficients(2, [0, 0]), /sum to 0/);
    assert.throws(() => fedavgCoefficients(2, [1, -1]), /client 1/);
  });
});

describe("taskArithmeticDense", () => {
  it("is λ Σ Θ_i", () => {
    assertClose(flatten(taskArithmeticDense(g, 0.7).merged), combine([0.7, 0.7, 0.7]), {
      rtol: 1e-12,
      atol: 1e-15,
    });
    assertClose(flatten(taskArithmeticDense(g).merged), combine([1, 1, 1]), { rtol: 1e-12, atol: 1e-15 });
  });
});

describe("fedavgFactorsDense", () => {
  const eq = randomModuleGroup({ seed: 8, dIn: 9, dOut: 6, ranks: [2, 2], scalings: [0.5, 2] });

  it("is (Σ c_i s_i B_i)(Σ c_i A_i), computed by hand", () => {
    const [c0, c1] = eq.clients;
    const r = fedavgFactorsDense(eq, [1, 3]);
    const expected = new Float64Array(6 * 9);
    for (let row = 0; row < 6; row++) {
      for (let col = 0; col < 9; col++) {
        for (let j = 0; j < 2; j++) {
          const b = 0.25 * 0.5 * c0.b[row * 2 + j] + 0.75 * 2 * c1.b[row * 2 + j];
          const a = 0.25 * c0.a[j * 9 + col] + 0.75 * c1.a[j * 9 + col];
          expected[row * 9 + col] += b * a;
        }
      }
    }
    assertClose(flatten(r.merged), expected, { rtol: 1e-12, atol: 1e-15 });
  });

  it("differs from FedAvg on products in general, but not for one client", () => {
    const diff = flatten(fedavgFactorsDense(eq).merged).map((x, e) => x - flatten(fedavgDense(eq).merged)[e]);
    assert.ok(Math.max(...diff.map(Math.abs)) > 1e-3);
    const one = { ...eq, clients: [eq.clients[1]] };
    assertClose(flatten(fedavgFactorsDense(one).merged), denseOf(one, 0), { rtol: 1e-12, atol: 1e-15 });
  });

  it("names the offending client and ranks when ranks differ", () => {
    assert.throws(() => fedavgFactorsDense(g), /client 1 has rank 3, expected rank 2/);
  });
});
