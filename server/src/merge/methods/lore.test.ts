import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { mergeModule } from "../engine.ts";
import { resolveOptions } from "../options.ts";
import { flatten, loreDense, truncatedSvd } from "../reference/index.ts";
import { assertClose, relFrobError } from "../testing/assert-close.ts";
import { activate, loadableBackends } from "../testing/backends.ts";
import { denseOfMerged } from "../testing/dense-of.ts";
import { randomModuleGroup } from "../testing/random-modules.ts";

const backends = await loadableBackends();
const group = randomModuleGroup({ seed: 21, name: "layers.0.v_proj", dOut: 20, dIn: 30, ranks: [4, 3, 5] });
const { dOut, dIn } = group;

for (const backend of backends) {
  describe(`LoRE on ${backend}`, () => {
    before(() => activate(backend));

    for (const [mu, lambda, rankCap] of [
      [0.05, 1, undefined],
      [0.2, 0.5, undefined],
      [0.05, 1, 0.1],
    ] as const) {
      test(`cores equal dense Algorithm 1 (μ=${mu}, λ=${lambda}, cap=${rankCap ?? "none"})`, () => {
        const opts = resolveOptions({
          method: "lore",
          rank: "full",
          mu,
          scale: lambda,
          rankCap,
          iters: 40,
          tol: 1e-8,
        });
        const got = mergeModule(group, opts);
        const ref = loreDense(group, { mu, lambda, rankCap, iters: 40, tol: 1e-8 });
        assert.equal(got.report.iterations, ref.iterations);
        assertClose([got.report.objective ?? Number.NaN], [ref.objective], { rtol: 1e-4, what: "objective" });
        assert.ok(relFrobError(denseOfMerged(got.merged, dOut, dIn), flatten(ref.merged)) < 1e-4);
      });
    }

    test("output rank truncates θ₀ + λΣδ by its SVD", () => {
      const got = mergeModule(
        group,
        resolveOptions({ method: "lore", rank: 3, mu: 0.05, iters: 40, tol: 1e-8 }),
      );
      const ref = loreDense(group, { mu: 0.05, iters: 40, tol: 1e-8 });
      const t = truncatedSvd(ref.merged, 3);
      assert.equal(got.merged.rank, 3);
      assert.ok(relFrobError(denseOfMerged(got.merged, dOut, dIn), flatten(t.b.mmul(t.a))) < 1e-4);
    });
  });
}
