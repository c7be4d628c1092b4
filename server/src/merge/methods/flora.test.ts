import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { activate, loadableBackends } from "../../testing/backends.ts";
import { mergeModule } from "../engine.ts";
import { MergeOptionsError } from "../errors.ts";
import { resolveOptions } from "../options.ts";
import { fedavgDense, flatten } from "../reference/index.ts";
import { relFrobError } from "../testing/assert-close.ts";
import { denseOfMerged } from "../testing/dense-of.ts";
import { randomModuleGroup } from "../testing/random-modules.ts";

const backends = await loadableBackends();
const mixed = randomModuleGroup({ seed: 61, name: "layers.2.q_proj", dOut: 24, dIn: 19, ranks: [2, 5, 3] });
const samples = [120, 40, 300];

for (const backend of backends) {
  describe(`flora on ${backend}`, () => {
    before(() => activate(backend));

    test("stacks the sample-weighted factors at rank Σ r_i: exactly the FedAvg of the products", () => {
      const got = mergeModule(mixed, resolveOptions({ method: "flora", samples }));
      assert.equal(got.merged.rank, 10);
      const ref = fedavgDense(mixed, samples);
      assert.deepEqual(got.report.weights, ref.weights);
      const e = relFrobError(denseOfMerged(got.merged, mixed.dOut, mixed.dIn), flatten(ref.merged));
      assert.ok(e < 1e-6, `relative error ${e}`);
      assert.equal(got.report.residual, 0);
    });

    test("refuses a rank: its rank is the clients' together", () => {
      assert.throws(() => resolveOptions({ method: "flora", rank: 4 }), MergeOptionsError);
    });
  });
}
