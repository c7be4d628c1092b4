/**
 * A federation's norm bound end to end: one client sends an update it scaled
 * ×100 (valid, within intake's limits); with `norm_bound_median_multiple` 3
 * and `norm_bound_action` "reject" the round publishes exactly the merge of
 * the other clients, the attacker's merge weight is 0 — and with "clip" its
 * weight stays below the honest clients' combined weight.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import {
  FetchAdapterRequestSchema,
  parseSafetensorsLayout,
  safetensorsHeaderLength,
} from "@tributary/protocol";
import { assertEqualsDirectMerge } from "./helpers/direct-merge.ts";
import { waitFor } from "./helpers/expect.ts";
import { type Fixture, joinAll, startFixture } from "./helpers/federation.ts";
import { fetchAdapter, upload } from "./helpers/grpc-calls.ts";

/** The adapter with every lora_B value multiplied by `factor` (F32 tensors). */
function scaledB(bytes: Uint8Array, factor: number): Uint8Array {
  const out = new Uint8Array(bytes);
  const n = safetensorsHeaderLength(bytes, bytes.length, "x");
  for (const [name, t] of parseSafetensorsLayout(bytes.subarray(8, 8 + n), bytes.length, "x").tensors) {
    if (!name.endsWith("lora_B.weight")) continue;
    assert.equal(t.dtype, "F32");
    const view = new DataView(out.buffer, t.offset, t.byteLength);
    for (let i = 0; i < t.byteLength; i += 4) view.setFloat32(i, view.getFloat32(i, true) * factor, true);
  }
  return out;
}

describe("a federation's norm bound against one client scaling its update ×100", { timeout: 120_000 }, () => {
  let fx: Fixture;
  before(async () => {
    fx = await startFixture({ clients: 1 });
  });
  after(async () => {
    await fx?.close();
  });

  for (const action of ["reject", "clip"] as const) {
    it(`norm_bound_action "${action}"`, async () => {
      const federationId = `bounded-${action}`;
      const fed = await fx.addFederation({
        id: federationId,
        clients: 4,
        minClients: 4,
        quorum: 4,
        normBoundMedianMultiple: 3,
        normBoundAction: action,
      });
      const clients = fed.clients;
      await joinAll(fx.client, fed);
      for (const [i, c] of clients.entries()) {
        await upload(fx.client, c.token, {
          federationId,
          round: 1,
          clientId: c.id,
          updateId: `u-${c.id}`,
          configJson: c.configJson,
          bytes: i === 0 ? scaledB(c.bytes, 100) : c.bytes,
        });
      }
      await waitFor(
        "the round to publish",
        () => fx.service.coordinator.rounds(federationId)[0]?.round.state === "published",
        30_000,
      );
      const result = await fx.service.coordinator.result(federationId, 1);
      assert.ok(result !== undefined);
      const attacker = result.weights[result.clients.indexOf("client-1")];
      if (action === "reject") {
        assert.equal(attacker, 0);
        // The operator sees why (page, rounds API): the norm bound left it out of every module.
        assert.deepEqual(
          result.excluded?.map((e) => e.clientId),
          ["client-1"],
        );
        assert.match(
          result.excluded?.[0].reason ?? "",
          /^norm bound: left out of (\d+) of \1 modules \(‖Θ‖_F up to [\d.e+]+, bound [\d.e+]+\)$/,
        );
        const merged = await fetchAdapter(
          fx.client,
          clients[1].token,
          create(FetchAdapterRequestSchema, { federationId, selector: { case: "round", value: 1 } }),
        );
        await assertEqualsDirectMerge(
          { configJson: merged.configJson, safetensors: merged.bytes },
          clients.slice(1).map((c) => c.dir),
          { rank: 4, samples: [100, 100, 100] },
        );
      } else {
        assert.ok(attacker > 0 && attacker < 0.5, `the clipped attacker weighs ${attacker}`);
        assert.equal(result.excluded, undefined, "clipped, not left out");
      }
    });
  }
});
