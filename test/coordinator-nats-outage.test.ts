/**
 * NATS down when a round is merged: the round is PUBLISHED locally but not
 * announced; once NATS is back the outbox announces it with the right
 * content hash and journals the `published` flag, so a restarted
 * coordinator does not announce it again.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { watchResults } from "@tributary/client/nats";
import type { LogFields } from "../server/src/core/log.ts";
import { waitFor } from "./helpers/expect.ts";
import { type Fixture, startFixture, submitUpdate } from "./helpers/federation.ts";
import { publishedResults } from "./helpers/nats-inspect.ts";

interface LogLine {
  readonly level: "info" | "warn" | "error";
  readonly message: string;
  readonly fields: LogFields;
}

describe("NATS down at publish time", () => {
  let fx: Fixture;
  const lines: LogLine[] = [];
  const record =
    (level: LogLine["level"]) =>
    (message: string, fields: LogFields = {}) =>
      lines.push({ level, message, fields });
  const announced = () => lines.filter((l) => l.message === "round announced" && l.fields.round === 1);

  before(async () => {
    fx = await startFixture({
      clients: 3,
      rank: 4,
      log: { info: record("info"), warn: record("warn"), error: record("error") },
    });
    await fx.joinAll();
  });
  after(async () => {
    await fx.close();
  });

  const send = (i: number) => submitUpdate(fx.client, fx.federationId, fx.clients[i]);
  const round1 = () => fx.service.coordinator.rounds(fx.federationId)[0].round;

  it("merges while NATS is down and announces once it is back", async () => {
    await send(0);
    await send(1);
    await fx.nats.stop();
    const ack = await send(2);
    assert.equal(ack.accepted, true);

    const merged = await waitFor("round 1 to be merged", () => round1().state === "published" && round1());
    assert.match(merged.resultHash ?? "", /^[0-9a-f]{64}$/);
    await waitFor("a failed announcement attempt", () =>
      lines.some((l) => l.level === "warn" && /round 1 of fed-it not published/.test(l.message)),
    );
    assert.notEqual(round1().published, true);
    assert.deepEqual(announced(), []);

    await fx.nats.restart();
    const watch = watchResults({
      servers: fx.nats.url,
      federationId: fx.federationId,
      reconnectTimeWaitMs: 200,
    });
    try {
      const next = await watch[Symbol.asyncIterator]().next();
      assert.equal(next.done, false);
      assert.equal(next.value.round, 1);
      assert.equal(next.value.contentHash, merged.resultHash);
      const adapter = await watch.fetchAdapter(next.value);
      assert.equal(adapter.safetensors.byteLength, next.value.size);
    } finally {
      await watch.close();
    }
    await waitFor("the published flag", () => round1().published === true);
    assert.equal(announced().length, 1);
  });

  it("does not announce the round again after a restart", async () => {
    await fx.restart();
    // Replayed from the journal, before the outbox could have done anything.
    assert.equal(round1().published, true);
    assert.equal(round1().state, "published");
    // Give the outbox's first pass (run at start) and a retry time to act.
    await new Promise((r) => setTimeout(r, 1_000));
    assert.equal(announced().length, 1, "round 1 was announced again after the restart");
    const published = await publishedResults(fx.nats.url, fx.federationId);
    assert.deepEqual(
      published.announcements.map((a) => [a.round, a.contentHash]),
      [[1, round1().resultHash]],
    );
  });
});
