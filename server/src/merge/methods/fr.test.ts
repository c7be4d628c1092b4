import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { activate, loadableBackends } from "../../testing/backends.ts";
import { mergeModule } from "../engine.ts";
import { lowBandBasis, lowBandHalfWidth } from "../frequency-bands.ts";
import { resolveOptions } from "../options.ts";
import { flatten, frDense, lowBand } from "../reference/index.ts";
import { assertClose, relFrobError } from "../testing/assert-close.ts";
import { denseOfMerged } from "../testing/dense-of.ts";
import { randomModuleGroup } from "../testing/random-modules.ts";

const backends = await loadableBackends();
// Odd and even sizes, so both band parities are covered.
const group = randomModuleGroup({ seed: 31, name: "layers.1.q_proj", dOut: 16, dIn: 25, ranks: [3, 2, 4] });
const { dOut, dIn } = group;

test("the band basis matches the reference band and is orthonormal", () => {
  for (const [m, c] of [
    [16, 0.1],
    [25, 0.3],
    [7, 0.9],
    [64, 0.01],
  ] as const) {
    assert.equal(2 * lowBandHalfWidth(m, c) + 1, lowBand(m, c).length, `m=${m} c=${c}`);
    const e = lowBandBasis(m, c);
    assert.ok(e !== null);
    for (let i = 0; i < e.cols; i++) {
      for (let j = 0; j < e.cols; j++) {
        let s = 0;
        for (let t = 0; t < m; t++) s += e.data[t * e.cols + i] * e.data[t * e.cols + j];
        assert.ok(Math.abs(s - (i === j ? 1 : 0)) < 1e-5, `EᵀE[${i}][${j}] = ${s}`);
      }
    }
  }
  assert.equal(lowBandBasis(16, 0), null);
});

for (const backend of backends) {
  describe(`FR-Merging on ${backend}`, () => {
    before(() => activate(backend));
    for (const combine of ["mean", "sum", "from"] as const) {
      for (const cutoff of [0.1, 0.3]) {
        test(`factored high-pass equals the 2-D DFT filter (combine=${combine}, cutoff=${cutoff})`, () => {
          const got = mergeModule(
            group,
            resolveOptions({ method: "fr", rank: "full", combine, cutoff, k: 0.9, scale: 0.8 }),
          );
          const ref = frDense(group, { cutoff, combine, k: 0.9, scale: 0.8 });
          assert.ok(relFrobError(denseOfMerged(got.merged, dOut, dIn), flatten(ref.merged)) < 1e-4);
          if (combine === "from") {
            assertClose(got.report.weights, ref.weights, { rtol: 1e-4, what: "weights" });
          }
        });
      }
    }
    test("cutoff 0 is the unfiltered combination", () => {
      const got = mergeModule(group, resolveOptions({ method: "fr", rank: "full", cutoff: 0 }));
      const ref = frDense(group, { cutoff: 0, combine: "mean" });
      assert.equal(got.merged.rank, 9);
      assert.ok(relFrobError(denseOfMerged(got.merged, dOut, dIn), flatten(ref.merged)) < 1e-5);
    });
  });
}
