import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { activate, loadableBackends } from "../../testing/backends.ts";
import { mergeModule } from "../engine.ts";
import { MergeInputError, MergeOptionsError } from "../errors.ts";
import { resolveOptions } from "../options.ts";
import { denseTaskVectors, feditDense, flatten, frob2, weightedSum } from "../reference/index.ts";
import { assertClose, relFrobError } from "../testing/assert-close.ts";
import { denseOfMerged } from "../testing/dense-of.ts";
import { randomModuleGroup } from "../testing/random-modules.ts";

const backends = await loadableBackends();
const mixed = randomModuleGroup({ seed: 51, name: "layers.1.q_proj", dOut: 20, dIn: 17, ranks: [2, 5, 3] });
const equal = randomModuleGroup({ seed: 52, name: "layers.1.v_proj", dOut: 20, dIn: 17, ranks: [4, 4, 4] });
const samples = [120, 40, 300];

for (const backend of backends) {
  describe(`fedit on ${backend}`, () => {
    before(() => activate(backend));

    test("averages the zero-padded factors, as the dense procedure of its paper, at the largest rank", () => {
      const got = mergeModule(mixed, resolveOptions({ method: "fedit", samples }));
      const ref = feditDense(mixed, samples);
      assert.equal(got.merged.rank, 5);
      assertClose(got.report.weights, ref.weights, { rtol: 1e-12 });
      const e = relFrobError(denseOfMerged(got.merged, mixed.dOut, mixed.dIn), flatten(ref.merged));
      assert.ok(e < 1e-5, `relative error ${e}`);
    });

    test("reports its inexactness: ‖B̄Ā − Σ c_i Θ_i‖², against the dense one", () => {
      const got = mergeModule(mixed, resolveOptions({ method: "fedit", samples }));
      const ref = feditDense(mixed, samples);
      const exact = weightedSum(denseTaskVectors(mixed), ref.weights);
      const want = frob2(ref.merged.clone().sub(exact));
      assert.ok(
        got.report.residual !== null && Math.abs(got.report.residual - want) <= 1e-4 * want,
        `${got.report.residual} vs ${want}`,
      );
      assert.ok(want > 0, "inexact for random clients");
    });

    test("equals FedAvg of factors when the ranks are equal, and keeps the largest rank", () => {
      const fedit = mergeModule(equal, resolveOptions({ method: "fedit", samples }));
      const factors = mergeModule(equal, resolveOptions({ method: "fedavg-factors", samples }));
      assertClose(Array.from(fedit.merged.a), Array.from(factors.merged.a), { rtol: 1e-6 });
      assertClose(Array.from(fedit.merged.b), Array.from(factors.merged.b), { rtol: 1e-6 });
      assert.throws(() => mergeModule(mixed, resolveOptions({ method: "fedit", rank: 3 })), MergeInputError);
      assert.throws(() => resolveOptions({ method: "fedit", rank: "full" }), MergeOptionsError);
    });
  });
}
