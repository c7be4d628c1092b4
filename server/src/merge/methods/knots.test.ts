import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { activate, loadableBackends } from "../../testing/backends.ts";
import { mergeModule } from "../engine.ts";
import { MergeInputError } from "../errors.ts";
import { resolveOptions } from "../options.ts";
import type { MergeOptions } from "../params.ts";
import { fedavgDense, flatten, type KnotsDenseOptions, knotsDense } from "../reference/index.ts";
import { relFrobError } from "../testing/assert-close.ts";
import { denseOfMerged } from "../testing/dense-of.ts";
import { randomModuleGroup } from "../testing/random-modules.ts";
import type { ModuleGroup } from "../types.ts";
import { KNOTS_RELATIVE_TOL, KnotsThresholds } from "./knots.ts";

const backends = await loadableBackends();
const q = randomModuleGroup({ seed: 71, name: "layers.0.q_proj", dOut: 20, dIn: 14, ranks: [2, 4, 3] });
const v = randomModuleGroup({
  seed: 72,
  name: "layers.0.v_proj",
  dOut: 9,
  dIn: 14,
  ranks: [3, 1, 2],
  scale: 5,
});

/** The engine's dense result of each module, thresholds over the whole adapter for `adapter` scope. */
function engine(groups: readonly ModuleGroup[], opts: MergeOptions): Float64Array[] {
  let o = opts;
  if (opts.knotsScope === "adapter" && opts.knotsCombine !== "mean") {
    const acc = new KnotsThresholds(groups[0].clients.length, opts);
    for (const g of groups) acc.add(g);
    o = { ...opts, knotsThresholds: acc.thresholds() };
  }
  return groups.map((g) => {
    const got = mergeModule(g, o);
    return denseOfMerged(got.merged, g.dOut, g.dIn);
  });
}

function reference(groups: readonly ModuleGroup[], opts: MergeOptions): Float64Array[] {
  const ref: KnotsDenseOptions = {
    combine: opts.knotsCombine,
    topK: opts.topK,
    scope: opts.knotsScope,
    dareP: opts.dareP,
    seed: opts.seed,
    alpha: opts.scale,
    tol: KNOTS_RELATIVE_TOL,
    ...(typeof opts.rank === "number" ? { rank: opts.rank } : {}),
  };
  return knotsDense(groups, ref).map((m) => Float64Array.from(m.to1DArray()));
}

function assertMatches(groups: readonly ModuleGroup[], opts: MergeOptions): Float64Array[] {
  const got = engine(groups, opts);
  const want = reference(groups, opts);
  got.forEach((g, i) => {
    const e = relFrobError(g, want[i]);
    assert.ok(e < 1e-6, `${groups[i].name}: relative error ${e}`);
  });
  return got;
}

for (const backend of backends) {
  describe(`knots on ${backend}`, () => {
    before(() => activate(backend));

    for (const scope of ["module", "adapter"] as const) {
      test(`ties, ${scope} scope, heterogeneous ranks: the dense KnOTS procedure`, () => {
        assertMatches([q, v], resolveOptions({ method: "knots", knotsScope: scope, topK: 30, scale: 0.7 }));
      });
      test(`dare-ties, ${scope} scope: the same drop masks, then TIES`, () => {
        assertMatches(
          [q, v],
          resolveOptions({
            method: "knots",
            knotsScope: scope,
            knotsCombine: "dare-ties",
            dareP: 0.3,
            seed: 5,
          }),
        );
      });
    }

    test("the scope matters: the adapter's thresholds are not each module's", () => {
      const opts = resolveOptions({ method: "knots", topK: 30 });
      const adapter = engine([q, v], opts);
      const module = engine([q, v], { ...opts, knotsScope: "module" });
      assert.ok(relFrobError(adapter[1], module[1]) > 1e-3);
    });

    test("mean: U·mean(Uᵀ ΔW_i) is the plain mean of the updates, at rank Σ r_i", () => {
      const got = mergeModule(q, resolveOptions({ method: "knots", knotsCombine: "mean" }));
      assert.equal(got.merged.rank, 9);
      const ref = fedavgDense(q, [1, 1, 1]);
      const e = relFrobError(denseOfMerged(got.merged, q.dOut, q.dIn), flatten(ref.merged));
      assert.ok(e < 1e-6, `relative error ${e}`);
    });

    test("--rank r truncates U·merged exactly (its best rank-r approximation)", () => {
      const opts = resolveOptions({ method: "knots", knotsScope: "module", rank: 3 });
      const [got] = assertMatches([q], opts);
      const merged = mergeModule(q, opts);
      assert.equal(merged.merged.rank, 3);
      assert.ok((merged.report.residual ?? 0) > 0);
      assert.ok(got.length === q.dOut * q.dIn);
    });

    test("adapter scope refuses a lone module without the adapter's thresholds", () => {
      assert.throws(() => mergeModule(q, resolveOptions({ method: "knots" })), MergeInputError);
    });
  });
}
