import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { activate, loadableBackends } from "../../testing/backends.ts";
import { mergeModule } from "../engine.ts";
import { resolveOptions } from "../options.ts";
import { fedavgDense, flatten, medianDense } from "../reference/index.ts";
import { assertClose, relFrobError } from "../testing/assert-close.ts";
import { denseOfMerged } from "../testing/dense-of.ts";
import { duplicateClient, randomModuleGroup } from "../testing/random-modules.ts";
import type { ModuleGroup } from "../types.ts";

const backends = await loadableBackends();
const group = randomModuleGroup({
  seed: 5,
  name: "layers.1.v_proj",
  dOut: 20,
  dIn: 36,
  ranks: [3, 2, 4, 3, 2],
  scalings: [2, 1, 0.5, 2 / Math.sqrt(3), 1],
});
const { dOut, dIn } = group;

/** The same group with client `i`'s update scaled ×`factor` (B multiplied). */
function scaledClient(g: ModuleGroup, i: number, factor: number): ModuleGroup {
  return {
    ...g,
    clients: g.clients.map((c, j) => (j === i ? { ...c, b: c.b.map((v) => v * factor) } : c)),
  };
}

for (const backend of backends) {
  describe(`geometric median on ${backend}`, () => {
    before(() => activate(backend));

    test("at full rank equals Weiszfeld on the dense task vectors (weights, objective, M)", () => {
      const opts = resolveOptions({ method: "median", rank: "full", iters: 500, tol: 1e-12 });
      const got = mergeModule(group, opts);
      const ref = medianDense(group, { iters: 500, tol: 1e-12 });
      assertClose(got.report.weights, ref.weights, { rtol: 1e-4, what: "weights" });
      assertClose([got.report.objective ?? Number.NaN], [ref.objective], { rtol: 1e-5, what: "objective" });
      assert.ok(relFrobError(denseOfMerged(got.merged, dOut, dIn), flatten(ref.merged)) < 1e-5);
    });

    test("with sample counts: the weighted median", () => {
      const samples = [100, 300, 50, 200, 10];
      const got = mergeModule(
        group,
        resolveOptions({ method: "median", rank: "full", samples, iters: 500, tol: 1e-12 }),
      );
      const ref = medianDense(group, { samples, iters: 500, tol: 1e-12 });
      assertClose([got.report.objective ?? Number.NaN], [ref.objective], { rtol: 1e-5, what: "objective" });
      assert.ok(relFrobError(denseOfMerged(got.merged, dOut, dIn), flatten(ref.merged)) < 1e-5);
    });

    test("one client scaling its update ×100 moves the mean far and the median little", () => {
      const attacked = scaledClient(group, 2, 100);
      const honestMean = flatten(
        fedavgDense({ ...group, clients: group.clients.filter((_, j) => j !== 2) }).merged,
      );
      const meanErr = relFrobError(flatten(fedavgDense(attacked).merged), honestMean);
      const med = mergeModule(
        attacked,
        resolveOptions({ method: "median", rank: "full", iters: 500, tol: 1e-12 }),
      );
      const medErr = relFrobError(denseOfMerged(med.merged, dOut, dIn), honestMean);
      assert.ok(meanErr > 10, `the mean moved by ${meanErr}`);
      assert.ok(medErr < 1, `the median moved by ${medErr}`);
      assert.ok(med.report.weights[2] < 0.05, `the scaled client weighs ${med.report.weights[2]}`);
    });

    test("a duplicated client is the median of itself; rank-r output truncates the median", () => {
      const one = { ...group, clients: [group.clients[0]] };
      const self = mergeModule(duplicateClient(one, 0), resolveOptions({ method: "median", rank: "full" }));
      assert.ok(
        relFrobError(
          denseOfMerged(self.merged, dOut, dIn),
          flatten(medianDense(one, { iters: 1, tol: 0 }).merged),
        ) < 1e-6,
      );
      const r2 = mergeModule(group, resolveOptions({ method: "median", rank: 2, iters: 500, tol: 1e-12 }));
      assert.equal(r2.merged.rank, 2);
    });
  });
}
