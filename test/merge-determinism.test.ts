/**
 * Merges are byte-deterministic: the same accepted updates and merge spec
 * give the same adapter bytes whenever the merge runs (no wall-clock time in
 * the content; when a round was merged is the journal's `round-merged`), so a
 * merge redone after a crash stores nothing new. At start-up the file store
 * removes merged adapters that no round references, and says so.
 */
import assert from "node:assert/strict";
import { mkdir, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createMergePool } from "../server/src/compute/merge-pool.ts";
import { mergeRound } from "../server/src/coordinator/round-merge.ts";
import type { CoordinatorStore } from "../server/src/core/store.ts";
import { createFileStore } from "../server/src/store/file-store.ts";
import { type Fixture, fetchRound, publishFirstRound, startFixture } from "./helpers/federation.ts";

describe("byte-deterministic merges", () => {
  let fx: Fixture;
  let store: CoordinatorStore | undefined;
  const warnings: string[] = [];
  before(async () => {
    fx = await startFixture({
      clients: 2,
      method: "from",
      rank: 4,
      store: (dir) => {
        store = createFileStore(dir, { log: { info() {}, warn: (m) => warnings.push(m), error() {} } });
        return store;
      },
    });
    await fx.joinAll();
  });
  after(async () => {
    await fx?.close();
  });

  it("merges the same updates into the same bytes at another time, and cleans up what nothing references", async () => {
    const fed = fx.federationId;
    const round = await publishFirstRound(fx);
    const published = await fetchRound(fx.client, fx.clients[0].token, fed);
    assert.equal(published.contentHash, round.resultHash);
    const journaled = await fx.service.coordinator.result(fed, 1);
    assert.ok(journaled !== undefined && journaled.mergedAt >= round.closedAt!);

    // The same merge again, an hour later by its clock: the same content hash, so the store keeps one copy.
    const pool = await createMergePool({ threads: 0 });
    try {
      const again = await mergeRound({
        federation: fx.service.coordinator.federation(fed),
        round,
        updates: fx.service.coordinator.updates(fed, 1),
        store: store!,
        pool,
        now: () => journaled.mergedAt + 3_600_000,
      });
      assert.equal(again.stored.contentHash, round.resultHash);
      assert.deepEqual(again.result.weights, journaled.weights);
      assert.equal(again.result.mergedAt, journaled.mergedAt + 3_600_000);
    } finally {
      await pool.close();
    }

    // An adapter a crash left without a round record is removed at the next start, and logged.
    const adapters = join(fx.dataDir, "adapters");
    const orphan = "0".repeat(64);
    await mkdir(join(adapters, orphan), { recursive: true });
    await writeFile(join(adapters, orphan, "adapter_model.safetensors"), "x");
    await fx.restart();
    assert.deepEqual(await readdir(adapters), [round.resultHash]);
    assert.ok(warnings.includes("removed what a crash left behind"), warnings.join("; "));
  });
});
