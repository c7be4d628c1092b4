/**
 * What still goes wrong at merge time stays contained: when one client's
 * accepted update cannot be merged (here: its stored file damaged on disk
 * after it was acknowledged — a NaN where a factor was), that client is left
 * out with the reason recorded (in the result, `ListUpdates`, the operator
 * page) and the round publishes the merge of the rest, as long as they make
 * the quorum; below it the round fails saying why.
 */
import assert from "node:assert/strict";
import { open, readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parseSafetensorsLayout, safetensorsHeaderLength } from "@tributary/protocol";
import { roundsView } from "../server/src/operator-ui/views.ts";
import { assertEqualsDirectMerge } from "./helpers/direct-merge.ts";
import { waitFor } from "./helpers/expect.ts";
import {
  type Fixture,
  fetchRound,
  joinAll,
  listUpdates,
  startFixture,
  type TestClient,
  type TestFederation,
} from "./helpers/federation.ts";
import { upload } from "./helpers/grpc-calls.ts";
import { recordedMetrics } from "./helpers/metrics.ts";

/** Writes a NaN over the first value of the first tensor of `c`'s stored update of round 1. */
async function damageStoredUpdate(fx: Fixture, federationId: string, c: TestClient): Promise<void> {
  const path = join(fx.dataDir, "updates", federationId, "1", `${c.id}.safetensors`);
  const bytes = new Uint8Array(await readFile(path));
  const n = safetensorsHeaderLength(bytes, bytes.length, path);
  const [, t] = [...parseSafetensorsLayout(bytes.subarray(8, 8 + n), bytes.length, path).tensors][0];
  const nan = t.dtype === "F32" ? [0x00, 0x00, 0xc0, 0x7f] : [0xc0, 0x7f];
  const handle = await open(path, "r+");
  try {
    await handle.write(new Uint8Array(nan), 0, nan.length, t.offset);
  } finally {
    await handle.close();
  }
}

describe("a client's update that cannot be merged is left out, not the round", { timeout: 120_000 }, () => {
  let fx: Fixture;
  const metrics = recordedMetrics();
  before(async () => {
    fx = await startFixture({ clients: 1, telemetry: metrics.telemetry });
  });
  after(async () => {
    await fx?.close();
  });

  const submit = (fed: TestFederation, c: TestClient) =>
    upload(fx.client, c.token, {
      federationId: fed.federationId,
      round: 1,
      clientId: c.id,
      updateId: `u-${c.id}`,
      configJson: c.configJson,
      bytes: c.bytes,
    });

  it("publishes the merge of the others and records why", async () => {
    const fed = await fx.addFederation({
      id: "contain",
      clients: 3,
      minClients: 3,
      quorum: 2,
      waitAfterQuorumMs: 2_000,
    });
    await joinAll(fx.client, fed);
    const [c1, c2, c3] = fed.clients;
    await submit(fed, c1);
    await damageStoredUpdate(fx, fed.federationId, c1);
    await submit(fed, c2);
    await submit(fed, c3);
    await waitFor(
      "the round to publish",
      () => fx.service.coordinator.rounds(fed.federationId)[0]?.round.state === "published",
      30_000,
    );
    const result = await fx.service.coordinator.result(fed.federationId, 1);
    assert.deepEqual(result?.clients, [c2.id, c3.id]);
    assert.equal(result?.excluded?.length, 1);
    assert.equal(result?.excluded?.[0].clientId, c1.id);
    assert.match(
      result?.excluded?.[0].reason ?? "",
      /client client-1\/adapter_model\.safetensors: tensor .* non-finite value NaN/,
    );

    const merged = await fetchRound(fx.client, c2.token, fed.federationId);
    await assertEqualsDirectMerge(
      { configJson: merged.configJson, safetensors: merged.bytes },
      [c2.dir, c3.dir],
      { rank: 4, samples: [100, 100] },
    );

    const listed = await listUpdates(fx, fed.federationId);
    const byClient = new Map(listed.updates.map((u) => [u.clientId, u]));
    assert.match(byClient.get(c1.id)?.mergeExclusion ?? "", /non-finite value NaN/);
    assert.equal(byClient.get(c2.id)?.mergeExclusion, "");

    const page = await roundsView(fx.service.coordinator, fed.federationId, Date.now());
    const submissions = page.rounds.find((r) => r.number === 1)?.submissions ?? [];
    assert.match(submissions.find((s) => s.clientId === c1.id)?.excluded ?? "", /non-finite/);
    assert.equal(submissions.find((s) => s.clientId === c2.id)?.excluded, null);

    assert.equal(
      await metrics.sum("tributary_merge_exclusions_total", {
        federation: fed.federationId,
        reason: "AdapterFormatError",
      }),
      1,
    );
  });

  it("fails the round, saying why, when the rest fall below the quorum", async () => {
    const fed = await fx.addFederation({ id: "contain-quorum", clients: 2, minClients: 2, quorum: 2 });
    await joinAll(fx.client, fed);
    const [c1, c2] = fed.clients;
    await submit(fed, c1);
    await damageStoredUpdate(fx, fed.federationId, c1);
    await submit(fed, c2);
    await waitFor(
      "the round to fail",
      () => fx.service.coordinator.rounds(fed.federationId)[0]?.round.state === "failed",
      30_000,
    );
    assert.match(
      fx.service.coordinator.rounds(fed.federationId)[0].round.failure ?? "",
      /1 update\(s\) could not be merged \(client-1\); 1 left, below the quorum of 2/,
    );
  });
});
