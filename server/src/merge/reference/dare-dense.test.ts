import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { streamKey, uniformAt } from "../random.ts";
import { assertClose } from "../testing/assert-close.ts";
import { randomModuleGroup } from "../testing/random-modules.ts";
import { dareDense } from "./dare-dense.ts";
import { denseTaskVectors, flatten, weightedSum } from "./task-vectors.ts";

const g = randomModuleGroup({ seed: 51, dIn: 50, dOut: 40, ranks: [2, 3] });
const thetas = denseTaskVectors(g);

describe("dareDense", () => {
  it("with p = 0 is the mean (default) or the sum, times λ", () => {
    assertClose(flatten(dareDense(g, { p: 0, seed: 1 }).merged), flatten(weightedSum(thetas, [0.5, 0.5])), {
      rtol: 1e-14,
    });
    assertClose(
      flatten(dareDense(g, { p: 0, seed: 1, combine: "sum", lambda: 0.3 }).merged),
      flatten(weightedSum(thetas, [0.3, 0.3])),
      { rtol: 1e-14, atol: 1e-16 },
    );
  });

  it("keeps element e of client i iff uniformAt(streamKey(seed, name, i), e) ≥ p, rescaled by 1/(1−p)", () => {
    const p = 0.3;
    const r = dareDense(g, { p, seed: 9, moduleName: "other" });
    let kept = 0;
    r.rescaled.forEach((d, i) => {
      const key = streamKey(9, "other", i);
      const expected = flatten(thetas[i]).map((x, e) => (uniformAt(key, e) >= p ? x / (1 - p) : 0));
      assertClose(flatten(d), expected, { rtol: 1e-14, what: `client ${i}` });
      kept += expected.filter((x) => x !== 0).length;
    });
    assert.ok(Math.abs(kept / 4000 - 0.7) < 0.03, `kept fraction ${kept / 4000}`);
    assertClose(flatten(r.merged), flatten(weightedSum(r.rescaled, [0.5, 0.5])), { rtol: 1e-14 });
    // Clients draw different masks.
    const zeros = r.rescaled.map((d) => flatten(d).map((x) => (x === 0 ? 1 : 0)));
    assert.notDeepEqual(zeros[0], zeros[1]);
  });

  it("rejects p outside [0, 1)", () => {
    assert.throws(() => dareDense(g, { p: 1, seed: 1 }), /\[0, 1\)/);
  });
});
