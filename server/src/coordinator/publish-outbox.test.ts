import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { watchResults } from "@tributary/client/nats";
import { startNatsServer } from "../../../test/helpers/nats-server.ts";
import type { RoundResult } from "../core/model.ts";
import { PublishUnavailableError } from "../core/publisher.ts";
import { createNatsPublisher } from "../transport/nats/publisher.ts";
import { makeResultFixture } from "../transport/nats/testing/result-fixture.ts";
import { createPublishOutbox } from "./publish-outbox.ts";

describe("publish outbox", { timeout: 45_000 }, () => {
  it("publishes a round merged while NATS is down once NATS is back", async (t) => {
    const nats = await startNatsServer({ jetstream: true });
    t.after(() => nats.close());
    const publisher = createNatsPublisher({ servers: nats.url, reconnectTimeWaitMs: 200, timeoutMs: 3_000 });
    t.after(() => publisher.close());
    const watch = watchResults({
      servers: nats.url,
      federationId: "fed-1",
      reconnectTimeWaitMs: 200,
      pullExpiresMs: 1_000,
    });
    t.after(() => watch.close());
    const announcements = watch[Symbol.asyncIterator]();

    const round1 = makeResultFixture("fed-1", 1);
    await publisher.publish(round1.result, round1.adapter);
    assert.equal((await announcements.next()).value?.round, 1);

    await nats.stop();
    await new Promise((resolve) => setTimeout(resolve, 100));
    const round2 = makeResultFixture("fed-1", 2, 2 * 1024 * 1024);
    const started = Date.now();
    await assert.rejects(publisher.publish(round2.result, round2.adapter), PublishUnavailableError);
    assert.ok(Date.now() - started < 1_000, `publish took ${Date.now() - started} ms to fail`);

    const journal: RoundResult[] = [];
    let published: (result: RoundResult) => void = () => {};
    const publishedOnce = new Promise<RoundResult>((resolve) => {
      published = resolve;
    });
    const outbox = createPublishOutbox({
      publisher,
      pending: async () =>
        journal.length > 0 ? [] : [{ result: round2.result, load: async () => round2.adapter }],
      onPublished: async (result) => {
        journal.push(result);
        published(result);
      },
      retryMs: 100,
      maxRetryMs: 500,
    });
    t.after(() => outbox.close());
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(journal.length, 0);

    await nats.restart();
    assert.equal((await publishedOnce).round, 2);
    const announcement = (await announcements.next()).value;
    assert.ok(announcement !== undefined);
    assert.equal(announcement.round, 2);
    assert.equal(announcement.contentHash, round2.result.contentHash);
    const fetched = await watch.fetchAdapter(announcement);
    assert.equal(Buffer.compare(fetched.safetensors, round2.adapter.safetensors), 0);
    assert.equal(journal.length, 1);
  });

  it("kick() publishes a new result at once and close() stops the loop", async (t) => {
    const nats = await startNatsServer({ jetstream: true });
    t.after(() => nats.close());
    const publisher = createNatsPublisher({ servers: nats.url });
    t.after(() => publisher.close());
    const ready: {
      result: RoundResult;
      load: () => Promise<{ configJson: string; safetensors: Uint8Array }>;
    }[] = [];
    const done: number[] = [];
    let onDone: () => void = () => {};
    const outbox = createPublishOutbox({
      publisher,
      pending: async () => ready.filter((p) => !done.includes(p.result.round)),
      onPublished: async (result) => {
        done.push(result.round);
        onDone();
      },
      retryMs: 60_000,
    });
    t.after(() => outbox.close());
    const fixture = makeResultFixture("fed-2", 1);
    const publishedNow = new Promise<void>((resolve) => {
      onDone = resolve;
    });
    ready.push({ result: fixture.result, load: async () => fixture.adapter });
    outbox.kick();
    await publishedNow;
    assert.deepEqual(done, [1]);
    await outbox.close();
  });

  it("a publisher started while NATS is down fails fast, then publishes once NATS is up", async (t) => {
    const nats = await startNatsServer({ jetstream: true });
    t.after(() => nats.close());
    await nats.stop();
    const publisher = createNatsPublisher({ servers: nats.url, reconnectTimeWaitMs: 100, timeoutMs: 5_000 });
    t.after(() => publisher.close());
    await new Promise((resolve) => setTimeout(resolve, 200));
    const { result, adapter } = makeResultFixture("fed-3", 1);
    const started = Date.now();
    await assert.rejects(publisher.publish(result, adapter), PublishUnavailableError);
    assert.ok(Date.now() - started < 1_000, `publish took ${Date.now() - started} ms to fail`);
    await nats.restart();
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        await publisher.publish(result, adapter);
        break;
      } catch (err) {
        if (!(err instanceof PublishUnavailableError) || Date.now() > deadline) throw err;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  });
});
