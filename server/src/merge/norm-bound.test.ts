import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { activate, loadableBackends } from "../testing/backends.ts";
import { clientNorm2, mergeModule } from "./engine.ts";
import { median } from "./norm-bound.ts";
import { resolveOptions } from "./options.ts";
import { flatten, fromDense } from "./reference/index.ts";
import { assertClose, relFrobError } from "./testing/assert-close.ts";
import { denseOfMerged } from "./testing/dense-of.ts";
import { randomModuleGroup } from "./testing/random-modules.ts";
import type { ModuleGroup } from "./types.ts";

const backends = await loadableBackends();
const honest = randomModuleGroup({
  seed: 21,
  name: "layers.0.q_proj",
  dOut: 18,
  dIn: 30,
  ranks: [2, 3, 2, 4, 3],
});
const { dOut, dIn } = honest;
/** Client 1 scales its update ×100. */
const attacked: ModuleGroup = {
  ...honest,
  clients: honest.clients.map((c, i) => (i === 1 ? { ...c, scaling: c.scaling * 100 } : c)),
};
const norms = attacked.clients.map((c) => Math.sqrt(clientNorm2(c, dOut, dIn)));

test("median of norms", () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 2, 3]), 2.5);
});

for (const backend of backends) {
  describe(`norm bounds on ${backend}`, () => {
    before(() => activate(backend));

    test("clip: the client above 3× the median norm is rescaled to the bound, and FroM weighs the clipped norm", () => {
      const bound = 3 * median(norms);
      const got = mergeModule(attacked, resolveOptions({ method: "from", rank: "full", normBoundMedian: 3 }));
      // Dense reference: FroM on the task vectors with Θ_1 rescaled to the bound.
      const clipped: ModuleGroup = {
        ...attacked,
        clients: attacked.clients.map((c, i) =>
          i === 1 ? { ...c, scaling: (c.scaling * bound) / norms[1] } : c,
        ),
      };
      const ref = fromDense(clipped, { k: 0.9 });
      assertClose(got.report.weights, ref.weights, { rtol: 1e-5, what: "weights" });
      assert.ok(relFrobError(denseOfMerged(got.merged, dOut, dIn), flatten(ref.merged)) < 1e-5);
      assert.deepEqual(
        got.report.bounded?.map((b) => [b.client, b.action]),
        [[1, "clip"]],
      );
      assertClose([got.report.bounded![0].norm, got.report.bounded![0].bound], [norms[1], bound], {
        rtol: 1e-9,
      });
      // Unbounded, the attacker dominates FroM.
      const raw = mergeModule(attacked, resolveOptions({ method: "from", rank: "full" }));
      assert.ok(raw.report.weights[1] > 0.9, `unbounded weight ${raw.report.weights[1]}`);
      assert.ok(got.report.weights[1] < 0.5, `bounded weight ${got.report.weights[1]}`);
    });

    test("reject: the client is left out (weight 0) and the rest merge as without it", () => {
      const got = mergeModule(
        attacked,
        resolveOptions({
          method: "fedavg",
          rank: "full",
          normBoundMedian: 3,
          normBoundAction: "reject",
          samples: [1, 2, 3, 4, 5],
        }),
      );
      const rest: ModuleGroup = { ...attacked, clients: attacked.clients.filter((_, i) => i !== 1) };
      const ref = mergeModule(
        rest,
        resolveOptions({ method: "fedavg", rank: "full", samples: [1, 3, 4, 5] }),
      );
      assert.equal(got.report.weights[1], 0);
      assertClose(
        got.report.weights.filter((_, i) => i !== 1),
        ref.report.weights,
        { rtol: 1e-9, what: "weights of the others" },
      );
      assert.ok(
        relFrobError(denseOfMerged(got.merged, dOut, dIn), denseOfMerged(ref.merged, dOut, dIn)) < 1e-6,
      );
    });

    test("an absolute bound applies alone, and nothing changes below it", () => {
      const none = mergeModule(honest, resolveOptions({ method: "from", rank: "full", normBound: 1e9 }));
      assert.equal(none.report.bounded, undefined);
      const tight = mergeModule(
        attacked,
        resolveOptions({ method: "from", rank: "full", normBound: median(norms) }),
      );
      assert.ok((tight.report.bounded?.length ?? 0) >= 2);
      assert.throws(
        () =>
          mergeModule(
            attacked,
            resolveOptions({ method: "from", normBound: 1e-12, normBoundAction: "reject" }),
          ),
        /every client is above the norm bound/,
      );
      assert.throws(() => resolveOptions({ method: "from", normBound: -1 }), /norm bound must be > 0/);
    });
  });
}
