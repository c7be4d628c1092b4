import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { activate, loadableBackends } from "../../testing/backends.ts";
import { mergeModule } from "../engine.ts";
import { resolveOptions } from "../options.ts";
import type { MergeOptions } from "../params.ts";
import { coreSpaceDense, fedavgDense, flatten } from "../reference/index.ts";
import { relFrobError } from "../testing/assert-close.ts";
import { denseOfMerged } from "../testing/dense-of.ts";
import { randomModuleGroup } from "../testing/random-modules.ts";
import type { ModuleGroup } from "../types.ts";

const backends = await loadableBackends();
const mixed = randomModuleGroup({ seed: 81, name: "layers.1.q_proj", dOut: 22, dIn: 17, ranks: [3, 5, 2] });
// Σ r_i > dOut: the stacked B has rank dOut, so the cores are dOut × Σ r_i.
const wide = randomModuleGroup({
  seed: 82,
  name: "layers.1.v_proj",
  dOut: 6,
  dIn: 30,
  ranks: [4, 4],
  scale: 3,
});

function check(group: ModuleGroup, opts: MergeOptions): number {
  const got = mergeModule(group, opts);
  const want = coreSpaceDense(group, {
    combine: opts.coreCombine,
    topK: opts.topK,
    dareP: opts.dareP,
    seed: opts.seed,
    alpha: opts.scale,
    ...(typeof opts.rank === "number" ? { rank: opts.rank } : {}),
  });
  const e = relFrobError(denseOfMerged(got.merged, group.dOut, group.dIn), want.to1DArray());
  assert.ok(e < 1e-6, `${group.name} ${opts.coreCombine}: relative error ${e}`);
  return got.merged.rank;
}

for (const backend of backends) {
  describe(`core-space on ${backend}`, () => {
    before(() => activate(backend));

    for (const combine of ["ties", "dare-ties", "mean", "sum"] as const) {
      test(`${combine}: the dense Core Space procedure, heterogeneous ranks, Σ r_i above and below dOut`, () => {
        const opts = resolveOptions({
          method: "core-space",
          coreCombine: combine,
          dareP: 0.3,
          seed: 7,
          scale: 0.6,
        });
        assert.equal(opts.topK, 10, "the Core Space code's top-k");
        assert.equal(check(mixed, opts), 10);
        assert.equal(check(wide, opts), 6);
      });
    }

    test("mean is exactly the mean of the updates: the bases hold every update", () => {
      const got = mergeModule(mixed, resolveOptions({ method: "core-space", coreCombine: "mean" }));
      const e = relFrobError(
        denseOfMerged(got.merged, mixed.dOut, mixed.dIn),
        flatten(fedavgDense(mixed, [1, 1, 1]).merged),
      );
      assert.ok(e < 1e-6, `relative error ${e}`);
    });

    test("--rank r truncates exactly", () => {
      const opts = resolveOptions({ method: "core-space", rank: 4, topK: 40 });
      assert.equal(check(mixed, opts), 4);
      assert.ok((mergeModule(mixed, opts).report.residual ?? 0) > 0);
    });
  });
}
