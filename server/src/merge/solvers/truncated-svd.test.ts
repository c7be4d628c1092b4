import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { activate, loadableBackends } from "../../testing/backends.ts";
import { mergeModule } from "../engine.ts";
import { columnCoefficients, stackModule, stackTerms } from "../factor-stack.ts";
import { resolveOptions } from "../options.ts";
import { flatten, frob2, taskArithmeticDense, truncatedSvd } from "../reference/index.ts";
import { relFrobError } from "../testing/assert-close.ts";
import { denseOfMerged } from "../testing/dense-of.ts";
import { randomModuleGroup } from "../testing/random-modules.ts";
import { chooseRoute, normBound2, truncateStack } from "./truncated-svd.ts";

const backends = await loadableBackends();
// Many clients of a small module: R = 48 > min(dOut, dIn) would pick `dense`, so routes are forced.
const many = randomModuleGroup({
  seed: 5,
  name: "layers.0.q_proj",
  dOut: 30,
  dIn: 36,
  ranks: [2, 3, 1, 4, 2, 2, 3, 1, 2, 4, 3, 1, 2, 2, 3, 1],
});

test("the cost model picks `stream` when the stacked width is large, the Gram routes when small", () => {
  assert.equal(chooseRoute(4096, 4096, 1024, 8, {}), "stream");
  assert.equal(chooseRoute(4096, 4096, 2048, 16, {}), "stream");
  assert.equal(chooseRoute(4096, 4096, 256, 8, {}), "subspace");
  assert.equal(chooseRoute(4096, 4096, 64, 8, {}), "core");
  assert.equal(chooseRoute(4096, 4096, 64, 8, { route: "stream" }), "stream");
  // Llama-3-8B q_proj / v_proj at r = 16, as measured on BLAS: the Gram route at n = 32 (R = 512),
  // the stream route at n = 128 (R = 2048) for both — for v_proj, 0.35 s against 0.66 s for the dense route.
  assert.equal(chooseRoute(4096, 4096, 512, 16, {}), "subspace");
  assert.equal(chooseRoute(1024, 4096, 512, 16, {}), "subspace");
  assert.equal(chooseRoute(1024, 4096, 2048, 16, {}), "stream");
  // Far past min(dIn, dOut), forming M is cheaper.
  assert.equal(chooseRoute(1024, 4096, 8192, 16, {}), "dense");
});

test("normBound2 bounds ‖Σ c_i Θ_i‖², and is exact for one client", () => {
  const stack = stackModule(many);
  const coeffs = many.clients.map((_, i) => (i % 3 === 0 ? -0.5 : 0.2 + i / 40));
  const colCoef = columnCoefficients(stack, coeffs);
  const exact = truncateStack(stack, coeffs, Math.min(many.dOut, many.dIn), { route: "core" });
  const bound = normBound2(stack, colCoef);
  assert.ok(exact.norm2 !== null && bound >= exact.norm2 * (1 - 1e-6), `${bound} < ${exact.norm2}`);
  const one = randomModuleGroup({ seed: 6, dOut: 12, dIn: 9, ranks: [3] });
  const s1 = stackModule(one);
  const want = frob2(taskArithmeticDense(one, 0.7).merged);
  const got = normBound2(s1, columnCoefficients(s1, [0.7]));
  // Float32 Grams, raised by a 1e-5 margin: at least the norm, and within 5e-5 of it.
  assert.ok(got >= want && got - want <= 5e-5 * want, `${got} vs ${want}`);
});

test("normBound2 joins a client's several terms (FR-Merging's stacks) before taking its norm", () => {
  // One client as two terms, B = [B1 | B2], A = [A1; A2]: exact, as for one term.
  const one = randomModuleGroup({ seed: 7, dOut: 12, dIn: 9, ranks: [4] });
  const c = one.clients[0];
  const split = (b: Float32Array, from: number, to: number) => {
    const out = new Float32Array(12 * (to - from));
    for (let row = 0; row < 12; row++)
      for (let j = from; j < to; j++) out[row * (to - from) + j - from] = b[row * 4 + j];
    return out;
  };
  const terms = [
    { client: 0, rank: 1, b: split(c.b, 0, 1), a: c.a.slice(0, 9), scale: c.scaling },
    { client: 0, rank: 3, b: split(c.b, 1, 4), a: c.a.slice(9, 36), scale: c.scaling },
  ];
  const stack = stackTerms(one.name, 12, 9, 1, terms);
  const want = frob2(taskArithmeticDense(one, 0.7).merged);
  const got = normBound2(stack, columnCoefficients(stack, [0.7]));
  assert.ok(Math.abs(got - want) <= 1e-5 * want, `${got} vs ${want}`);
  // Two clients of two terms each: a bound of the combination.
  const two = randomModuleGroup({ seed: 8, dOut: 12, dIn: 9, ranks: [2, 2] });
  const twoTerms = two.clients.flatMap((k, i) => [
    { client: i, rank: 1, b: split2(k.b, 0), a: k.a.slice(0, 9), scale: k.scaling },
    { client: i, rank: 1, b: split2(k.b, 1), a: k.a.slice(9, 18), scale: k.scaling },
  ]);
  const s2 = stackTerms(two.name, 12, 9, 2, twoTerms);
  const coeffs = [0.6, -0.3];
  const exact = frob2(
    taskArithmeticDense(
      { ...two, clients: two.clients.map((k, i) => ({ ...k, scaling: k.scaling * coeffs[i] })) },
      1,
    ).merged,
  );
  assert.ok(normBound2(s2, columnCoefficients(s2, coeffs)) >= exact * (1 - 1e-6));
});

/** Column `j` of a `12 × 2` row-major `B`. */
function split2(b: Float32Array, j: number): Float32Array {
  return Float32Array.from({ length: 12 }, (_, row) => b[row * 2 + j]);
}

for (const backend of backends) {
  describe(`stream route on ${backend}`, () => {
    before(() => activate(backend));

    test("equals the truncated SVD of Σ c_i Θ_i (dense reference), with signed coefficients", () => {
      const stack = stackModule(many);
      const coeffs = many.clients.map((_, i) => (i % 3 === 0 ? -0.5 : 0.2 + i / 40));
      const got = truncateStack(stack, coeffs, 5, { route: "stream", tol: 1e-9 });
      assert.equal(got.solver, "stream");
      assert.equal(got.norm2, null);
      assert.equal(got.residual, null);
      // Σ c_i Θ_i densely: task arithmetic with λ = 1 on clients pre-scaled by c_i.
      const scaledGroup = {
        ...many,
        clients: many.clients.map((c, i) => ({ ...c, scaling: c.scaling * coeffs[i] })),
      };
      const m = taskArithmeticDense(scaledGroup, 1).merged;
      const ref = truncatedSvd(m, 5);
      assert.ok(
        relFrobError(denseOfMerged(got.merged, many.dOut, many.dIn), flatten(ref.b.mmul(ref.a))) < 1e-3,
      );
      const kept = got.sigma2.reduce((x, y) => x + y, 0);
      const refKept = Array.from(ref.s.slice(0, 5), (x) => x * x).reduce((x, y) => x + y, 0);
      assert.ok(Math.abs(kept - refKept) <= 1e-5 * refKept, `${kept} vs ${refKept}`);
    });

    test("FroM, FedAvg and task arithmetic on the stream route match the Gram route's objective", () => {
      for (const method of ["from", "fedavg", "task-arithmetic"] as const) {
        const run = (route: "core" | "stream") =>
          mergeModule(many, resolveOptions({ method, rank: 4, truncation: { route, tol: 1e-9 } }));
        const core = run("core");
        const stream = run("stream");
        assert.equal(stream.report.solver, "stream", method);
        const a = denseOfMerged(stream.merged, many.dOut, many.dIn);
        const b = denseOfMerged(core.merged, many.dOut, many.dIn);
        assert.ok(relFrobError(a, b) < 1e-3, `${method}: ${relFrobError(a, b)}`);
        if (core.report.objective !== null) {
          const o = stream.report.objective ?? Number.NaN;
          assert.ok(Math.abs(o - core.report.objective) <= 1e-4 * core.report.objective, `${method}: ${o}`);
        }
      }
    });
  });
}
