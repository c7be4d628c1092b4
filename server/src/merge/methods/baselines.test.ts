import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { activate, loadableBackends } from "../../testing/backends.ts";
import { mergeModule } from "../engine.ts";
import { MergeInputError } from "../errors.ts";
import { resolveOptions } from "../options.ts";
import {
  dareDense,
  fedavgDense,
  fedavgFactorsDense,
  flatten,
  taskArithmeticDense,
  tiesDense,
  truncatedSvd,
} from "../reference/index.ts";
import { assertClose, relFrobError } from "../testing/assert-close.ts";
import { denseOfMerged } from "../testing/dense-of.ts";
import { randomModuleGroup } from "../testing/random-modules.ts";

const backends = await loadableBackends();
const group = randomModuleGroup({ seed: 41, name: "layers.2.v_proj", dOut: 18, dIn: 22, ranks: [3, 4, 2] });
const equal = randomModuleGroup({ seed: 42, name: "layers.2.k_proj", dOut: 18, dIn: 22, ranks: [4, 4, 4] });
const { dOut, dIn } = group;
const full = Math.min(dOut, dIn);
const close = (got: Float64Array, want: Float64Array, tol = 1e-4) => {
  const e = relFrobError(got, want);
  assert.ok(e < tol, `relative error ${e}`);
};

for (const backend of backends) {
  describe(`baselines on ${backend}`, () => {
    before(() => activate(backend));

    test("fedavg is the sample-weighted mean of products", () => {
      const samples = [100, 300, 50];
      const got = mergeModule(group, resolveOptions({ method: "fedavg", rank: "full", samples }));
      const ref = fedavgDense(group, samples);
      assertClose(got.report.weights, ref.weights, { rtol: 1e-12 });
      close(denseOfMerged(got.merged, dOut, dIn), flatten(ref.merged), 1e-5);
      const r3 = mergeModule(group, resolveOptions({ method: "fedavg", rank: 3, samples }));
      const t = truncatedSvd(ref.merged, 3);
      close(denseOfMerged(r3.merged, dOut, dIn), flatten(t.b.mmul(t.a)), 1e-3);
    });

    test("fedavg-factors averages A and B separately, and reports its error against exact fedavg", () => {
      const got = mergeModule(equal, resolveOptions({ method: "fedavg-factors" }));
      const ref = fedavgFactorsDense(equal);
      close(denseOfMerged(got.merged, dOut, dIn), flatten(ref.merged), 1e-5);
      const exact = fedavgDense(equal).merged;
      const diff = ref.merged.clone().sub(exact);
      const want = diff.to1DArray().reduce((s, x) => s + x * x, 0);
      assertClose([got.report.residual ?? Number.NaN], [want], { rtol: 1e-3 });
      assert.throws(() => mergeModule(group, resolveOptions({ method: "fedavg-factors" })), MergeInputError);
    });

    test("task arithmetic is λ Σ Θ_i", () => {
      const got = mergeModule(group, resolveOptions({ method: "task-arithmetic", rank: "full", scale: 0.4 }));
      close(denseOfMerged(got.merged, dOut, dIn), flatten(taskArithmeticDense(group, 0.4).merged), 1e-5);
    });

    for (const density of [0.2, 0.5, 1]) {
      test(`TIES (density ${density}) equals the dense definition`, () => {
        const got = mergeModule(group, resolveOptions({ method: "ties", rank: full, density, scale: 0.9 }));
        close(
          denseOfMerged(got.merged, dOut, dIn),
          flatten(tiesDense(group, { density, lambda: 0.9 }).merged),
          1e-4,
        );
      });
    }

    for (const combine of ["mean", "sum"] as const) {
      test(`DARE (${combine}) equals the dense definition with the same seeded mask`, () => {
        const o = resolveOptions({ method: "dare", rank: full, drop: 0.6, seed: 7, combine, scale: 1.5 });
        const got = mergeModule(group, o);
        const ref = dareDense(group, { p: 0.6, seed: 7, combine, lambda: 1.5 });
        close(denseOfMerged(got.merged, dOut, dIn), flatten(ref.merged), 1e-4);
      });
    }

    test("DARE with a different seed gives a different result", () => {
      const a = mergeModule(group, resolveOptions({ method: "dare", rank: full, drop: 0.5, seed: 1 }));
      const b = mergeModule(group, resolveOptions({ method: "dare", rank: full, drop: 0.5, seed: 2 }));
      assert.ok(relFrobError(denseOfMerged(a.merged, dOut, dIn), denseOfMerged(b.merged, dOut, dIn)) > 1e-2);
    });
  });
}
