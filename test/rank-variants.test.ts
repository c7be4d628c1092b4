/**
 * FlexLoRA's distribution: clients training at ranks 4 and 8, merged by
 * FedAvg at rank 8. The round keeps its merged adapter truncated to rank 4
 * too; the rank-4 clients receive that (the TypeScript SDK and the Python
 * client by default, FetchAdapter with `rank`, the NATS announcement), and
 * it is the best rank-4 approximation of the merged update.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { connect } from "@tributary/client";
import { watchResults } from "@tributary/client/nats";
import { FetchAdapterRequestSchema, sha256Hex } from "@tributary/protocol";
import { truncatedSvd } from "../server/src/merge/reference/index.ts";

import { relativeError } from "../server/src/peft/testing/fixtures.ts";
import { type Fixture, startFixture } from "./helpers/federation.ts";
import { fetchAdapter, upload } from "./helpers/grpc-calls.ts";
import { asMatrix, moduleProducts } from "./helpers/module-products.ts";
import { runPythonScript } from "./helpers/python-script.ts";

describe("rank variants (FlexLoRA): each client receives the merged update at its own rank", () => {
  let fx: Fixture;
  before(async () => {
    // client-1 and client-3 train at rank 4, client-2 at rank 8.
    fx = await startFixture({ clients: 3, method: "fedavg", rank: 8 });
  });
  after(async () => {
    await fx.close();
  });

  it("keeps the rank-4 truncation, and serves it to rank-4 clients over gRPC, NATS and both SDKs", async () => {
    const [c1, c2, c3] = fx.clients;
    const watch = watchResults({ servers: fx.nats.url, federationId: fx.federationId });
    const sdk = connect({ coordinator: fx.service.endpoint.address, token: c1.token, nats: fx.nats.url });
    try {
      await fx.joinAll();
      await sdk.join(fx.federationId);
      // client-3: the Python client, submitting its rank-4 adapter and waiting for the result.
      const python = runPythonScript(
        [
          "import json, sys, tributary_client as t",
          "c = t.connect(sys.argv[1], sys.argv[2])",
          "c.join(sys.argv[3])",
          "r = c.next_round(timeout=60)",
          "c.submit(r.number, sys.argv[4], samples=300)",
          "res = c.wait_for_result(r.number, sys.argv[5], timeout=60)",
          "print(json.dumps({'round': res.round, 'hash': res.content_hash, 'rank': res.rank}))",
          "c.close()",
        ],
        [fx.service.endpoint.address, c3.token, fx.federationId, c3.dir, join(fx.root, "py-global")],
      );
      const round = await sdk.nextRound();
      await sdk.submit(round.number, c1.dir, { samples: 100 });
      await upload(fx.client, c2.token, {
        federationId: fx.federationId,
        round: round.number,
        clientId: c2.id,
        updateId: `u-${c2.id}`,
        samples: 200,
        configJson: c2.configJson,
        bytes: c2.bytes,
      });
      const announced = await watch[Symbol.asyncIterator]().next();
      assert.equal(announced.done, false);
      const ann = announced.value;
      assert.deepEqual(
        ann.rankVariants?.map((v) => v.rank),
        [4],
        "one variant, at the rank-4 clients' rank",
      );
      const variant = ann.rankVariants![0];

      // The TypeScript SDK receives it by default: client-1 submitted a rank-4 adapter.
      const mine = await sdk.waitForResult(round.number);
      assert.equal(mine.rank, 4);
      assert.equal(mine.contentHash, variant.contentHash);
      // And the Python client.
      const py = JSON.parse((await python).stdout.trim().split("\n").at(-1)!) as {
        hash: string;
        rank: number;
      };
      assert.deepEqual(py, { round: round.number, hash: variant.contentHash, rank: 4 });

      // Over gRPC, by rank; the whole adapter with rank 0 or one no smaller than 8.
      const req = (rank: number) =>
        create(FetchAdapterRequestSchema, {
          federationId: fx.federationId,
          selector: { case: "round", value: round.number },
          rank,
        });
      const v4 = await fetchAdapter(fx.client, c2.token, req(4));
      assert.equal(v4.contentHash, variant.contentHash);
      assert.equal(sha256Hex(v4.bytes), variant.contentHash);
      for (const rank of [0, 8, 16])
        assert.equal((await fetchAdapter(fx.client, c2.token, req(rank))).contentHash, ann.contentHash);
      await assert.rejects(fetchAdapter(fx.client, c2.token, req(5)), (err: Error) => {
        assert.match(err.message, /RANK_VARIANT_NOT_FOUND|no adapter of rank 5: its rank variants are 4/);
        return true;
      });

      // Over NATS: the same bytes.
      const overNats = await watch.fetchAdapter(ann, { rank: 4 });
      assert.equal(sha256Hex(overNats.safetensors), variant.contentHash);

      // It is the best rank-4 approximation of each merged module.
      const whole = await fetchAdapter(fx.client, c2.token, req(0));
      const full = moduleProducts(whole.configJson, whole.bytes);
      const cut = moduleProducts(v4.configJson, v4.bytes);
      for (const [name, m] of full) {
        const t = truncatedSvd(asMatrix(m.dense, m.dOut, m.dIn), 4);
        const got = cut.get(name)!;
        assert.equal(got.rank, Math.min(4, m.rank), `${name}: rank`);
        const e = relativeError(got.dense, Float64Array.from(t.b.mmul(t.a).to1DArray()));
        // The stored adapters are in the federation's canonical dtype: both sides rounded once.
        assert.ok(e < 1e-2, `${name}: relative error ${e} against the truncated SVD of the merged update`);
      }
    } finally {
      await sdk.close();
      await watch.close();
    }
  });
});
