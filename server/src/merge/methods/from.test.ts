import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { activate, loadableBackends } from "../../testing/backends.ts";
import { mergeModule } from "../engine.ts";
import { resolveOptions } from "../options.ts";
import { alsDense, flatten, fromDense } from "../reference/index.ts";
import { assertClose, relFrobError } from "../testing/assert-close.ts";
import { denseOfMerged } from "../testing/dense-of.ts";
import { duplicateClient, randomModuleGroup, withZeroClient } from "../testing/random-modules.ts";

const backends = await loadableBackends();
// Mixed ranks and scalings (rsLoRA-style √r scaling on two clients).
const group = randomModuleGroup({
  seed: 11,
  name: "layers.3.q_proj",
  dOut: 24,
  dIn: 40,
  ranks: [3, 5, 2, 4],
  scalings: [16 / 3, 16 / Math.sqrt(5), 2, 16 / 4],
});
const { dOut, dIn } = group;

for (const backend of backends) {
  describe(`FroM on ${backend}`, () => {
    before(() => activate(backend));

    test("closed form at full rank equals α Σ ŵ_i Θ_i", () => {
      const got = mergeModule(group, resolveOptions({ method: "from", rank: "full", k: 0.9, scale: 0.7 }));
      const ref = fromDense(group, { k: 0.9, scale: 0.7 });
      assert.equal(got.merged.rank, 14);
      assertClose(got.report.weights, ref.weights, { rtol: 1e-5, what: "weights" });
      assert.ok(relFrobError(denseOfMerged(got.merged, dOut, dIn), flatten(ref.merged)) < 1e-5);
      assertClose([got.report.objective ?? Number.NaN], [ref.objective], { rtol: 1e-4, what: "objective" });
    });

    for (const route of ["core", "subspace", "stream", "dense"] as const) {
      test(`rank-r exact solver (${route} route) reaches the truncated-SVD optimum`, () => {
        const opts = resolveOptions({ method: "from", rank: 4, k: 0.9, truncation: { route, tol: 1e-9 } });
        const got = mergeModule(group, opts);
        const ref = fromDense(group, { k: 0.9, rank: 4 });
        assert.equal(got.report.solver, route);
        assertClose([got.report.objective ?? Number.NaN], [ref.objective], { rtol: 1e-4, what: "objective" });
        if (route === "stream") assert.equal(got.report.residual, null, "stream never forms ‖M‖²");
        else
          assertClose([got.report.residual ?? Number.NaN], [ref.residual], { rtol: 1e-3, what: "residual" });
        assert.ok(relFrobError(denseOfMerged(got.merged, dOut, dIn), flatten(ref.merged)) < 1e-3);
      });
    }

    test("ALS follows the paper's Algorithm 1 and approaches the optimum", () => {
      const opts = resolveOptions({
        method: "from",
        rank: 4,
        k: 0.9,
        solver: "als",
        iters: 200,
        sigma: 0.5,
        seed: 3,
        tol: 0,
      });
      const got = mergeModule(group, opts);
      const ref = alsDense(group, { k: 0.9, rank: 4, sigma: 0.5, iters: 200, seed: 3 });
      const exact = fromDense(group, { k: 0.9, rank: 4 });
      assert.equal(got.report.solver, "als");
      assertClose([got.report.objective ?? Number.NaN], [ref.loss], {
        rtol: 1e-3,
        what: "ALS loss vs dense ALS",
      });
      // never beats the global optimum, and gets within 1% of it
      assert.ok((got.report.objective ?? 0) >= exact.objective * (1 - 1e-5));
      assert.ok(
        (got.report.objective ?? 0) <= exact.objective * 1.01,
        `${got.report.objective} vs ${exact.objective}`,
      );
    });

    test("k = 0 is plain averaging", () => {
      const got = mergeModule(group, resolveOptions({ method: "from", rank: "full", k: 0 }));
      assertClose(got.report.weights, [0.25, 0.25, 0.25, 0.25], { rtol: 1e-12 });
    });

    test("large k picks the largest-norm update", () => {
      const got = mergeModule(group, resolveOptions({ method: "from", rank: "full", k: 200 }));
      const max = Math.max(...got.report.weights);
      assert.ok(max > 0.999, `largest weight ${max}`);
    });

    test("a single adapter merged with itself is itself", () => {
      const one = randomModuleGroup({ seed: 5, dOut, dIn, ranks: [4] });
      const twice = duplicateClient(one, 0);
      const got = mergeModule(twice, resolveOptions({ method: "from", rank: 4 }));
      const single = mergeModule(one, resolveOptions({ method: "from", rank: 4 }));
      const expected = fromDense(one, { k: 0.9 }).closedForm;
      assert.ok(relFrobError(denseOfMerged(got.merged, dOut, dIn), flatten(expected)) < 1e-5);
      assert.ok(relFrobError(denseOfMerged(single.merged, dOut, dIn), flatten(expected)) < 1e-5);
      const norm2 = flatten(expected).reduce((s, x) => s + x * x, 0);
      assert.ok(Math.abs(got.report.objective ?? 1) < 1e-5 * norm2, `objective ${got.report.objective}`);
    });

    test("a zero update gets weight 0; all-zero falls back to the mean", () => {
      const z = withZeroClient(group);
      const got = mergeModule(z, resolveOptions({ method: "from", rank: "full", k: 0.9 }));
      assert.equal(got.report.weights[4], 0);
      const zeros = withZeroClient(withZeroClient(randomModuleGroup({ seed: 1, dOut, dIn, ranks: [2] })));
      const allZero = { ...zeros, clients: zeros.clients.slice(1) };
      const m = mergeModule(allZero, resolveOptions({ method: "from", rank: 2 }));
      assert.deepEqual(m.report.weights, [0.5, 0.5]);
      assert.ok(denseOfMerged(m.merged, dOut, dIn).every((v) => v === 0));
    });

    test("rank larger than the input pads with zeros and stays exact", () => {
      const small = randomModuleGroup({ seed: 9, dOut, dIn, ranks: [2, 1] });
      const got = mergeModule(small, resolveOptions({ method: "from", rank: 10 }));
      assert.equal(got.merged.rank, 10);
      const ref = fromDense(small, { k: 0.9 });
      assert.ok(relFrobError(denseOfMerged(got.merged, dOut, dIn), flatten(ref.closedForm)) < 1e-5);
      assert.ok((got.report.residual ?? 1) <= 1e-6 * ref.objective + 1e-12);
    });

    test("duplicate clients (rank-deficient stack) on every route", () => {
      const dup = duplicateClient(duplicateClient(group, 1), 2);
      const ref = fromDense(dup, { k: 0.9, rank: 5 });
      for (const route of ["core", "subspace", "stream", "dense"] as const) {
        const got = mergeModule(
          dup,
          resolveOptions({ method: "from", rank: 5, truncation: { route, tol: 1e-9 } }),
        );
        assertClose([got.report.objective ?? Number.NaN], [ref.objective], {
          rtol: 1e-4,
          what: `${route} objective`,
        });
      }
    });
  });
}
