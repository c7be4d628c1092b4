import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { jetstreamManager } from "@nats-io/jetstream";
import { Objm } from "@nats-io/obj";
import { connect } from "@nats-io/transport-node";
import { AdapterIntegrityError, type ResultWatch, watchResults } from "@tributary/client/nats";
import { adapterObjects, DEFAULT_BUCKET, DEFAULT_STREAM, type RoundAnnouncement } from "@tributary/protocol";
import { startNatsServer, type TestNatsServer } from "../../../../test/helpers/nats-server.ts";
import { PublishContentError, type ResultPublisher } from "../../core/publisher.ts";
import { createNatsPublisher } from "./publisher.ts";
import { makeResultFixture } from "./testing/result-fixture.ts";

async function next(
  watch: ResultWatch,
  iterator = watch[Symbol.asyncIterator](),
): Promise<RoundAnnouncement> {
  const { value, done } = await iterator.next();
  assert.equal(done, false);
  return value as RoundAnnouncement;
}

describe("NATS publisher and subscriber", { timeout: 45_000 }, () => {
  let nats: TestNatsServer;
  let publisher: ResultPublisher;
  before(async () => {
    nats = await startNatsServer({ jetstream: true });
    publisher = createNatsPublisher({ servers: nats.url });
  });
  after(async () => {
    await publisher?.close();
    await nats?.close();
  });

  it("announces a round; the subscriber fetches the 5 MiB adapter byte-identical", async (t) => {
    const { result, adapter } = makeResultFixture("fed-a", 1, 5 * 1024 * 1024);
    const watch = watchResults({ servers: nats.url, federationId: "fed-a", reconnectTimeWaitMs: 200 });
    t.after(() => watch.close());
    const iterator = watch[Symbol.asyncIterator]();
    const received = next(watch, iterator);
    await publisher.publish(result, adapter);
    const announcement = await received;
    assert.deepEqual(announcement, {
      ...result,
      bucket: DEFAULT_BUCKET,
      objects: adapterObjects(result),
    });
    assert.match(
      announcement.objects.safetensors,
      /^fed-a\/round-1\/[0-9a-f]{64}\/adapter_model\.safetensors$/,
    );
    const fetched = await watch.fetchAdapter(announcement);
    assert.equal(fetched.configJson, adapter.configJson);
    assert.equal(Buffer.compare(fetched.safetensors, adapter.safetensors), 0);
  });

  it("publishing the same round twice stores one object and one announcement", async () => {
    const { result, adapter } = makeResultFixture("fed-b", 1);
    await publisher.publish(result, adapter);
    const nc = await connect({ servers: nats.url });
    try {
      const store = await new Objm(nc).open(DEFAULT_BUCKET);
      const first = await store.info(adapterObjects(result).safetensors);
      await publisher.publish(result, adapter);
      const second = await store.info(adapterObjects(result).safetensors);
      assert.ok(first !== null && second !== null);
      assert.equal(second.revision, first.revision);
      assert.equal(second.nuid, first.nuid);
      const jsm = await jetstreamManager(nc);
      const info = await jsm.streams.info(DEFAULT_STREAM, { subjects_filter: "tributary.rounds.fed-b" });
      assert.equal(info.state.subjects?.["tributary.rounds.fed-b"], 1);
    } finally {
      await nc.close();
    }
  });

  it("a late subscriber starts from the last announcement", async (t) => {
    const first = makeResultFixture("fed-c", 1);
    const second = makeResultFixture("fed-c", 2);
    await publisher.publish(first.result, first.adapter);
    await publisher.publish(second.result, second.adapter);
    const watch = watchResults({ servers: nats.url, federationId: "fed-c" });
    t.after(() => watch.close());
    const announcement = await next(watch);
    assert.equal(announcement.round, 2);
    assert.equal(announcement.contentHash, second.result.contentHash);
  });

  it("rejects an adapter whose bytes do not match the content hash", async () => {
    const { result } = makeResultFixture("fed-d", 1);
    const other = makeResultFixture("fed-d", 1).adapter;
    await assert.rejects(publisher.publish(result, other), PublishContentError);
  });

  it("fetching checks the announced hash", async (t) => {
    const { result, adapter } = makeResultFixture("fed-e", 1);
    await publisher.publish(result, adapter);
    const watch = watchResults({ servers: nats.url, federationId: "fed-e" });
    t.after(() => watch.close());
    const announcement = await next(watch);
    const forged = { ...announcement, contentHash: "0".repeat(64) };
    await assert.rejects(watch.fetchAdapter(forged), AdapterIntegrityError);
  });
});
