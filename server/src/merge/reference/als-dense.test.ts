import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Matrix, QrDecomposition } from "ml-matrix";
import { normalAt, streamKey } from "../random.ts";
import { randomModuleGroup } from "../testing/random-modules.ts";
import type { ClientLora, ModuleGroup } from "../types.ts";
import { alsDense, alsInitialA } from "./als-dense.ts";
import { fromDense } from "./from-dense.ts";
import { thinSvd } from "./task-vectors.ts";

/** A client whose task vector is `U diag(σ) Vᵀ` with random orthonormal `U`, `V`. */
function spectralClient(seed: number, dOut: number, dIn: number, sigmas: number[]): ClientLora {
  const r = sigmas.length;
  const rand = (rows: number, cols: number, key: number) =>
    Matrix.from1DArray(
      rows,
      cols,
      Array.from({ length: rows * cols }, (_, e) => normalAt(key, e)),
    );
  const u = new QrDecomposition(rand(dOut, r, streamKey(seed, "U"))).orthogonalMatrix;
  const v = new QrDecomposition(rand(dIn, r, streamKey(seed, "V"))).orthogonalMatrix;
  const b = u.mmul(Matrix.diag(sigmas));
  return {
    a: Float32Array.from(v.transpose().to1DArray()),
    b: Float32Array.from(b.to1DArray()),
    rank: r,
    scaling: 1,
  };
}

const separated: ModuleGroup = {
  name: "sep",
  dOut: 12,
  dIn: 20,
  clients: [spectralClient(1, 12, 20, [10, 6, 1, 0.5]), spectralClient(2, 12, 20, [1.5, 0.5])],
};

describe("alsInitialA", () => {
  it("draws σ · normalAt(streamKey(seed, name, 'als-init'), j · dIn + c)", () => {
    const a = alsInitialA(3, 7, 0.02, 9, "m");
    const key = streamKey(9, "m", "als-init");
    assert.equal(a.get(0, 0), 0.02 * normalAt(key, 0));
    assert.equal(a.get(2, 5), 0.02 * normalAt(key, 2 * 7 + 5));
  });
});

describe("alsDense", () => {
  it("has non-increasing loss before the break, ending just above the truncated-SVD optimum", () => {
    const rank = 2;
    const exact = fromDense(separated, { k: 1, rank });
    const spectrum = thinSvd(exact.closedForm).s;
    assert.ok(spectrum[1] / spectrum[2] > 3, `spectrum not separated: ${spectrum}`);
    const r = alsDense(separated, { k: 1, rank, sigma: 0.1, iters: 100, seed: 4 });
    assert.equal(r.losses.length, r.iterations);
    const improving = r.iterations < 100 ? r.losses.slice(0, -1) : r.losses;
    for (let j = 1; j < improving.length; j++) {
      assert.ok(improving[j] <= improving[j - 1], `loss rose at iteration ${j}: ${improving}`);
    }
    if (r.iterations < 100) assert.ok(r.losses[r.iterations - 1] >= r.loss);
    assert.equal(r.loss, Math.min(...r.losses));
    assert.ok(r.loss >= exact.objective * (1 - 1e-12), `${r.loss} < optimum ${exact.objective}`);
    assert.ok(r.loss <= exact.objective * (1 + 1e-6), `${r.loss} far above optimum ${exact.objective}`);
    assert.deepEqual(r.weights, exact.weights);
    assert.equal(r.b.columns, rank);
    assert.equal(r.a.rows, rank);
  });

  it("recovers a single rank-1 task vector exactly", () => {
    const one = randomModuleGroup({ seed: 2, dIn: 9, dOut: 6, ranks: [1] });
    const r = alsDense(one, { k: 0.9, rank: 1, sigma: 1, iters: 20, seed: 1 });
    assert.ok(r.loss < 1e-20, `loss ${r.loss}`);
  });

  it("stops on the relative tolerance and counts that iteration", () => {
    const g = randomModuleGroup({ seed: 6, dIn: 20, dOut: 12, ranks: [4, 4, 4] });
    const loose = alsDense(g, { k: 1, rank: 3, sigma: 0.1, iters: 200, seed: 3, tol: 1e-2 });
    const tight = alsDense(g, { k: 1, rank: 3, sigma: 0.1, iters: 200, seed: 3 });
    assert.ok(loose.iterations < tight.iterations, `${loose.iterations} vs ${tight.iterations}`);
    assert.equal(loose.losses.length, loose.iterations);
    const n = loose.iterations;
    assert.ok(loose.losses[n - 2] - loose.losses[n - 1] <= 1e-2 * loose.losses[n - 2]);
    assert.deepEqual(loose.losses, tight.losses.slice(0, n));
    assert.equal(loose.loss, loose.losses[n - 1]);
  });

  it("stops after iters iterations at most", () => {
    const g = randomModuleGroup({ seed: 6, dIn: 20, dOut: 12, ranks: [4, 4, 4] });
    const r = alsDense(g, { k: 1, rank: 3, sigma: 0.1, iters: 2, seed: 3 });
    assert.equal(r.iterations, 2);
  });
});
