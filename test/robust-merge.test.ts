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
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import {
  CreateFederationRequestSchema,
  Dtype,
  EnrollClientRequestSchema,
  type EnrollClientResponse,
  FetchAdapterRequestSchema,
  parseSafetensorsLayout,
  safetensorsHeaderLength,
} from "@tributary/protocol";
import { assertEqualsDirectMerge } from "./helpers/direct-merge.ts";
import { waitFor } from "./helpers/expect.ts";
import {
  clientAdapter,
  type Fixture,
  joinAll,
  MODULES,
  OPERATOR_TOKEN,
  startFixture,
  type TestClient,
} from "./helpers/federation.ts";
import { bearer, call, fetchAdapter, upload } from "./helpers/grpc-calls.ts";

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
      await call(
        fx.operator.createFederation,
        fx.operator,
        create(CreateFederationRequestSchema, {
          federationId,
          schema: {
            baseModelId: "synthetic/tiny-llama",
            modules: MODULES.map((m) => ({ name: m.name, dIn: m.dIn, dOut: m.dOut, maxRank: 8 })),
            allowedDtypes: [Dtype.F32],
          },
          merge: { method: "from", rank: 4, normBoundMedianMultiple: 3, normBoundAction: action },
          policy: { minClients: 4, quorum: 4, deadline: durationFromMs(60_000) },
        }),
        bearer(OPERATOR_TOKEN),
      );
      const clients: TestClient[] = [];
      for (let i = 1; i <= 4; i++) {
        const id = `c${i}`;
        const res = (await call(
          fx.operator.enrollClient,
          fx.operator,
          create(EnrollClientRequestSchema, { federationId, clientId: id }),
          bearer(OPERATOR_TOKEN),
        )) as EnrollClientResponse;
        const dir = `${fx.root}/${federationId}/${id}`;
        const files = await clientAdapter(dir, 2 * i + 1, 4); // odd seeds: F32
        clients.push({ id, token: res.token, dir, ...files });
      }
      await joinAll(fx.client, { federationId, clients });
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
      const attacker = result.weights[result.clients.indexOf("c1")];
      if (action === "reject") {
        assert.equal(attacker, 0);
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
      }
    });
  }
});
