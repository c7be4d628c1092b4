import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { watchResults } from "@tributary/client/nats";
import { KNOTS_RELATIVE_TOL } from "../server/src/merge/methods/knots.ts";
import { knotsDense } from "../server/src/merge/reference/index.ts";
import { decodeAdapter, readAdapter } from "../server/src/peft/index.ts";
import { denseProduct, relativeError } from "../server/src/peft/testing/fixtures.ts";
import { groupModule } from "../server/src/pipeline/merge-adapters.ts";
import { assertSameTensorsAsCliMerge } from "./helpers/direct-merge.ts";
import { type Fixture, startFixture } from "./helpers/federation.ts";
import { upload } from "./helpers/grpc-calls.ts";

describe("a KnOTS round (dare-ties, each client trimmed over its whole adapter)", () => {
  let fx: Fixture;
  before(async () => {
    fx = await startFixture({
      clients: 3,
      method: "knots",
      rank: 0,
      merge: { knotsCombine: "dare-ties", topK: 30, dareP: 0.2, seed: 4, scale: 0.8 },
    });
  });
  after(async () => {
    await fx.close();
  });

  it("broadcasts the dense KnOTS procedure's result, bit-identical to tributary merge", async () => {
    const watch = watchResults({ servers: fx.nats.url, federationId: fx.federationId });
    try {
      await fx.joinAll();
      await Promise.all(
        fx.clients.map((c, i) =>
          upload(fx.client, c.token, {
            federationId: fx.federationId,
            round: 1,
            clientId: c.id,
            updateId: `u-${c.id}`,
            samples: 100 * (i + 1),
            configJson: c.configJson,
            bytes: c.bytes,
          }),
        ),
      );
      const next = await watch[Symbol.asyncIterator]().next();
      assert.equal(next.done, false);
      const adapter = await watch.fetchAdapter(next.value);
      const dirs = fx.clients.map((c) => c.dir);
      const inputs = await Promise.all(dirs.map((d) => readAdapter(d)));
      const names = [...inputs[0].modules.keys()];
      const want = knotsDense(
        names.map((n) => groupModule(inputs, n)),
        {
          combine: "dare-ties",
          topK: 30,
          dareP: 0.2,
          seed: 4,
          scope: "adapter",
          alpha: 0.8,
          tol: KNOTS_RELATIVE_TOL,
        },
      );
      const merged = decodeAdapter(adapter.configJson, adapter.safetensors, "broadcast");
      names.forEach((name, i) => {
        const m = merged.modules.get(name)!;
        const e = relativeError(
          denseProduct(m.b, m.a, m.rank, m.scaling),
          Float64Array.from(want[i].to1DArray()),
        );
        assert.ok(e < 1e-5, `${name}: relative error ${e} against the dense KnOTS procedure`);
      });
      await assertSameTensorsAsCliMerge(adapter, dirs, {
        args: [
          "--method",
          "knots",
          "--knots-combine",
          "dare-ties",
          "--top-k",
          "30",
          "--dare-p",
          "0.2",
          "--seed",
          "4",
          "--scale",
          "0.8",
        ],
      });
    } finally {
      await watch.close();
    }
  });
});
