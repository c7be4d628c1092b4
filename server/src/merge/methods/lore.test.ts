import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { activate, loadableBackends } from "../../testing/backends.ts";
import { mergeModule } from "../engine.ts";
import { resolveOptions } from "../options.ts";
import { flatten, loreDense, truncatedSvd } from "../reference/index.ts";
import { assertClose, relFrobError } from "../testing/assert-close.ts";
import { denseOfMerged } from "../testing/dense-of.ts";
import { randomModuleGroup } from "../testing/random-modules.ts";
import type { ModuleMergeResult } from "../types.ts";
import { loreModule } from "./lore.ts";

const backends = await loadableBackends();

/** The start the engine took, from its report. */
function startOf(r: ModuleMergeResult): "mean" | "zero" {
  return r.report.solver === "lore-core-zero-start" ? "zero" : "mean";
}
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
        const ref = loreDense(group, { mu, lambda, rankCap, iters: 40, tol: 1e-8, start: startOf(got) });
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
      const ref = loreDense(group, { mu: 0.05, iters: 40, tol: 1e-8, start: startOf(got) });
      const t = truncatedSvd(ref.merged, 3);
      assert.equal(got.merged.rank, 3);
      assert.ok(relFrobError(denseOfMerged(got.merged, dOut, dIn), flatten(t.b.mmul(t.a))) < 1e-4);
    });
  });
}

describe("LoRE's certified partial SVTs", () => {
  // Ten clients of rank 3 in a 48 × 40 module: 30 × 30 cores, blocks of 9.
  const wide = randomModuleGroup({
    seed: 23,
    name: "layers.1.q_proj",
    dOut: 48,
    dIn: 40,
    ranks: Array(10).fill(3),
  });
  const opts = resolveOptions({ method: "lore", rank: "full", mu: 0.05, iters: 200, tol: 1e-9 });

  for (const start of ["mean", "zero"] as const) {
    test(`equal the dense Algorithm 1 from the ${start} start, iteration for iteration`, () => {
      const got = loreModule(wide, opts, { start, partial: true });
      assert.ok(got.svts.partial > 0, `partial SVTs: ${JSON.stringify(got.svts)}`);
      const ref = loreDense(wide, { mu: 0.05, iters: 200, tol: 1e-9, start });
      assert.equal(got.result.report.iterations, ref.iterations);
      assertClose([got.result.report.objective ?? Number.NaN], [ref.objective], {
        rtol: 1e-6,
        what: "objective",
      });
      assert.ok(relFrobError(denseOfMerged(got.result.merged, 48, 40), flatten(ref.merged)) < 1e-5);
      const full = loreModule(wide, opts, { start, partial: false });
      assert.equal(full.svts.partial, 0);
      assert.equal(full.result.report.iterations, got.result.report.iterations);
      assert.ok(
        relFrobError(denseOfMerged(got.result.merged, 48, 40), denseOfMerged(full.result.merged, 48, 40)) <
          1e-9,
      );
    });
  }

  test("both starts reach the same minimiser; auto starts from θ₀ = 0 unless most clients share an update", () => {
    const tight = { ...opts, iters: 5000, tol: 1e-12 };
    const mean = loreModule(wide, tight, { start: "mean", partial: true }).result;
    const zero = loreModule(wide, tight, { start: "zero", partial: true }).result;
    assertClose([mean.report.objective ?? Number.NaN], [zero.report.objective ?? Number.NaN], { rtol: 1e-9 });
    assert.ok(relFrobError(denseOfMerged(mean.merged, 48, 40), denseOfMerged(zero.merged, 48, 40)) < 1e-6);
    // Clients that share nothing: θ₀ = 0 is near the fixed point.
    assert.equal(mergeModule(wide, opts).report.solver, "lore-core-zero-start");
    // Clients that all share one large update: θ₀ must reach it, and the paper's mean start does so at once.
    const common = randomModuleGroup({ seed: 24, name: "shared", dOut: 48, dIn: 40, ranks: [3] });
    const shared = {
      ...wide,
      clients: wide.clients.map((c) => ({
        ...c,
        a: Float32Array.from([...c.a, ...common.clients[0].a.map((v) => 30 * v)]),
        b: Float32Array.from(
          Array.from({ length: 48 }, (_, row) => [
            ...c.b.subarray(row * 3, row * 3 + 3),
            ...common.clients[0].b.subarray(row * 3, row * 3 + 3),
          ]).flat(),
        ),
        rank: 6,
      })),
    };
    assert.equal(mergeModule(shared, opts).report.solver, "lore-core");
  });
});
