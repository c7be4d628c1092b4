import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { watchResults } from "@tributary/client/nats";
import { RoundState } from "@tributary/protocol";
import type { JournalEvent } from "../server/src/core/store.ts";
import { assertEqualsDirectMerge } from "./helpers/direct-merge.ts";
import { waitFor } from "./helpers/expect.ts";
import { type Fixture, fetchRound, listUpdates, MODULES, startFixture } from "./helpers/federation.ts";
import { upload } from "./helpers/grpc-calls.ts";

/** The journal's events, as the file store wrote them. */
async function journal(dataDir: string): Promise<JournalEvent[]> {
  const text = await readFile(join(dataDir, "journal.jsonl"), "utf8");
  return text
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line) as JournalEvent);
}

/** The types of the events of round `n`, in journal order. */
async function roundEvents(dataDir: string, n: number): Promise<string[]> {
  return (await journal(dataDir))
    .filter(
      (e) => ("round" in e && e.round.number === n) || (e.type === "update-accepted" && e.update.round === n),
    )
    .map((e) => e.type);
}

describe("a full round: enrollment → uploads → merge → NATS broadcast", () => {
  let fx: Fixture;
  before(async () => {
    fx = await startFixture({ clients: 3, method: "from", rank: 4 });
  });
  after(async () => {
    await fx.close();
  });

  it("broadcasts an adapter equal to a direct merge of the same inputs", async () => {
    const watch = watchResults({ servers: fx.nats.url, federationId: fx.federationId });
    try {
      await fx.joinAll();
      const round = fx.service.coordinator.current(fx.federationId);
      assert.equal(round?.number, 1);
      assert.equal(round?.state, "open");
      const acks = await Promise.all(
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
      for (const [i, ack] of acks.entries()) {
        assert.equal(ack.accepted, true);
        assert.equal(ack.duplicate, false);
        assert.equal(ack.contentHash, createHash("sha256").update(fx.clients[i].bytes).digest("hex"));
      }
      const it = watch[Symbol.asyncIterator]();
      const next = await it.next();
      assert.equal(next.done, false);
      const announcement = next.value;
      assert.equal(announcement.round, 1);
      assert.deepEqual(
        announcement.clients,
        fx.clients.map((c) => c.id),
      );
      assert.equal(announcement.weights.length, 3);
      const adapter = await watch.fetchAdapter(announcement);
      assert.equal(createHash("sha256").update(adapter.safetensors).digest("hex"), announcement.contentHash);

      // The same merge done directly on the clients' adapter directories.
      await assertEqualsDirectMerge(
        adapter,
        fx.clients.map((c) => c.dir),
        { rank: 4, samples: [100, 200, 300] },
      );

      // The same bytes over gRPC, and the operator's view of the round.
      const fetched = await fetchRound(fx.client, fx.clients[0].token, fx.federationId);
      assert.equal(fetched.contentHash, announcement.contentHash);
      assert.equal(fetched.bytes.length, adapter.safetensors.length);
      assert.equal(createHash("sha256").update(fetched.bytes).digest("hex"), announcement.contentHash);
      const listed = await listUpdates(fx, fx.federationId);
      assert.equal(listed.updates.length, 3);
      const total = listed.updates.reduce((s, u) => s + u.mergeWeight, 0);
      assert.ok(Math.abs(total - 1) < 1e-9, `merge weights sum to ${total}`);
      const r1 = fx.service.coordinator.rounds(fx.federationId)[0];
      assert.equal(r1.round.state, "published");
      assert.equal(r1.round.resultHash, announcement.contentHash);
      // The next round opened automatically.
      assert.equal(fx.service.coordinator.current(fx.federationId)?.number, 2);
      assert.equal(RoundState.PUBLISHED, 3);

      // Intake recorded what it measured of every module of every update.
      for (const u of fx.service.coordinator.updates(fx.federationId, 1)) {
        assert.deepEqual(Object.keys(u.modules ?? {}).sort(), MODULES.map((m) => m.name).sort());
        for (const m of Object.values(u.modules ?? {})) {
          assert.ok(m.rank >= 1 && m.scaling > 0 && Number.isFinite(m.norm) && m.norm > 0, JSON.stringify(m));
        }
      }

      // Stored updates and results are private to the coordinator's user.
      const loose: string[] = [];
      const walk = async (dir: string): Promise<void> => {
        for (const entry of await readdir(dir, { withFileTypes: true })) {
          const path = join(dir, entry.name);
          if (((await stat(path)).mode & 0o077) !== 0) loose.push(path);
          if (entry.isDirectory()) await walk(path);
        }
      };
      if (((await stat(fx.dataDir)).mode & 0o077) !== 0) loose.push(fx.dataDir);
      await walk(fx.dataDir);
      assert.deepEqual(loose, [], "data dir 0700, files 0600");

      // The round, read as the journal tells it: one event per step, in order,
      // and the merge's result journaled with the round, as announced.
      await waitFor("round 1 announced in the journal", async () =>
        (await roundEvents(fx.dataDir, 1)).includes("round-published"),
      );
      const steps = await roundEvents(fx.dataDir, 1);
      assert.deepEqual(steps, [
        "round-opened",
        "update-accepted",
        "update-accepted",
        "update-accepted",
        "round-closed",
        "round-merged",
        "round-published",
      ]);
      const merged = (await journal(fx.dataDir)).find((e) => e.type === "round-merged");
      assert.ok(merged?.type === "round-merged");
      assert.equal(merged.result.contentHash, announcement.contentHash);
      assert.deepEqual(merged.result.clients, announcement.clients);
      assert.deepEqual(merged.result.weights, announcement.weights);
    } finally {
      await watch.close();
    }
  });
});
