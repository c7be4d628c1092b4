import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { activate, loadableBackends } from "../../testing/backends.ts";
import { mergeModule } from "../engine.ts";
import { resolveOptions } from "../options.ts";
import { fedavgDense, flatten, rankPartitionDense, truncatedSvd } from "../reference/index.ts";
import { relFrobError } from "../testing/assert-close.ts";
import { denseOfMerged } from "../testing/dense-of.ts";
import { randomModuleGroup } from "../testing/random-modules.ts";
import { rankPartitions } from "./rank-partition.ts";

const backends = await loadableBackends();
const hetero = randomModuleGroup({
  seed: 91,
  name: "layers.3.q_proj",
  dOut: 26,
  dIn: 21,
  ranks: [4, 8, 16, 8],
});
const samples = [50, 200, 100, 150];
const equal = randomModuleGroup({ seed: 92, name: "layers.3.v_proj", dOut: 12, dIn: 15, ranks: [3, 3, 3] });

for (const backend of backends) {
  describe(`rank-partition on ${backend}`, () => {
    before(() => activate(backend));

    test("partitions cut at the clients' distinct ranks", () => {
      assert.deepEqual(rankPartitions([4, 8, 16, 8]), [4, 8, 16]);
    });

    test("--rank full: exactly each partition's mean over the clients that reach it", () => {
      const got = mergeModule(hetero, resolveOptions({ method: "rank-partition", rank: "full", samples }));
      assert.equal(got.merged.rank, 4 + 8 + 16 + 8);
      const want = rankPartitionDense(hetero, samples);
      const e = relFrobError(denseOfMerged(got.merged, hetero.dOut, hetero.dIn), flatten(want));
      assert.ok(e < 1e-6, `relative error ${e}`);
    });

    test("at the largest client rank (the default): the best rank-16 approximation of it", () => {
      const got = mergeModule(hetero, resolveOptions({ method: "rank-partition", samples }));
      assert.equal(got.merged.rank, 16);
      const t = truncatedSvd(rankPartitionDense(hetero, samples), 16);
      const e = relFrobError(denseOfMerged(got.merged, hetero.dOut, hetero.dIn), flatten(t.b.mmul(t.a)));
      assert.ok(e < 1e-5, `relative error ${e}`);
    });

    test("differs from FedAvg at heterogeneous ranks: the higher partitions are not diluted", () => {
      const full = resolveOptions({ method: "rank-partition", rank: "full", samples });
      const got = denseOfMerged(mergeModule(hetero, full).merged, hetero.dOut, hetero.dIn);
      assert.ok(relFrobError(got, flatten(fedavgDense(hetero, samples).merged)) > 0.05);
    });

    test("equal ranks: FedAvg exactly", () => {
      const got = mergeModule(
        equal,
        resolveOptions({ method: "rank-partition", rank: "full", samples: [1, 2, 3] }),
      );
      const e = relFrobError(
        denseOfMerged(got.merged, equal.dOut, equal.dIn),
        flatten(fedavgDense(equal, [1, 2, 3]).merged),
      );
      assert.ok(e < 1e-6, `relative error ${e}`);
    });
  });
}
