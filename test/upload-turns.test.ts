/**
 * The coordinator reads at most `maxActiveUploads` upload streams at once;
 * the others wait their turn unread, first in, first served. A waiting upload
 * is not ended by the idle timeout (it is the coordinator that is not
 * reading), and one cancelled while it waits gives up its place.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import {
  GetUploadStatusRequestSchema,
  type GetUploadStatusResponse,
  SubmitUpdateRequestSchema,
  type SubmitUpdateResponse,
  sha256Hex,
} from "@tributary/protocol";
import { type Fixture, startFixture } from "./helpers/federation.ts";
import { bearer, call, upload } from "./helpers/grpc-calls.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("uploads read a bounded number at a time", { timeout: 60_000 }, () => {
  let fx: Fixture;
  before(async () => {
    fx = await startFixture({ clients: 3, maxActiveUploads: 1, uploadIdleMs: 400 });
    await fx.joinAll();
  });
  after(async () => {
    await fx?.close();
  });

  const received = async (clientIndex: number, updateId: string): Promise<number> => {
    const c = fx.clients[clientIndex];
    const status = (await call(
      fx.client.getUploadStatus,
      fx.client,
      create(GetUploadStatusRequestSchema, { federationId: fx.federationId, round: 1, updateId }),
      bearer(c.token),
    )) as GetUploadStatusResponse;
    return Number(status.receivedBytes);
  };

  /** The header message of an upload of client `i`'s adapter as `updateId`. */
  const header = (i: number, updateId: string) => {
    const c = fx.clients[i];
    return create(SubmitUpdateRequestSchema, {
      payload: {
        case: "header",
        value: {
          federationId: fx.federationId,
          round: 1,
          clientId: c.id,
          updateId,
          sampleCount: 10n,
          contentHash: sha256Hex(c.bytes),
          totalSize: BigInt(c.bytes.length),
          adapterConfigJson: c.configJson,
          resumeOffset: 0n,
        },
      },
    });
  };
  const chunk = (bytes: Uint8Array) =>
    create(SubmitUpdateRequestSchema, { payload: { case: "chunk", value: bytes } });

  it("makes later uploads wait, past the idle timeout, and serves them in order once the turn is free", async () => {
    const [a, b, c] = fx.clients;
    // A holds the only turn, sending 1000 bytes every 100 ms (never idle for 400 ms).
    let settledA = false;
    let streamA: ReturnType<typeof fx.client.submitUpdate> | undefined;
    const ackA = new Promise<SubmitUpdateResponse>((resolve, reject) => {
      streamA = fx.client.submitUpdate(bearer(a.token), (err, res) => {
        settledA = true;
        if (err) reject(err);
        else resolve(res!);
      });
    });
    streamA!.write(header(0, "turn-a"));
    let sent = 0;
    const trickle = setInterval(() => {
      const next = Math.min(a.bytes.length - 1, sent + 1000);
      streamA!.write(chunk(a.bytes.subarray(sent, next)));
      sent = next;
    }, 100);
    try {
      while ((await received(0, "turn-a")) === 0) await sleep(50);

      // C enters the line, then B; C goes away while it waits.
      const streamC = fx.client.submitUpdate(bearer(c.token), () => {});
      streamC.write(header(2, "turn-c"));
      await sleep(200);
      let settledB = false;
      const ackB = upload(fx.client, b.token, {
        federationId: fx.federationId,
        round: 1,
        clientId: b.id,
        updateId: "turn-b",
        samples: 10,
        configJson: b.configJson,
        bytes: b.bytes,
      }).finally(() => {
        settledB = true;
      });
      await sleep(200);
      streamC.cancel();

      // Three idle timeouts later B is still waiting, unread, and A still uploading.
      await sleep(1200);
      assert.equal(settledB, false, "B finished while A held the only turn");
      assert.equal(settledA, false);
      assert.equal(await received(1, "turn-b"), 0, "B's bytes were read while it waited");
      assert.ok((await received(0, "turn-a")) > 0);

      clearInterval(trickle);
      streamA!.write(chunk(a.bytes.subarray(sent)));
      streamA!.end();
      const doneA = await ackA;
      assert.equal(doneA.accepted, true);
      assert.equal(doneA.contentHash, sha256Hex(a.bytes));
      // B gets the turn C gave up: had C's place been kept, B would wait forever.
      const doneB = await ackB;
      assert.equal(doneB.accepted, true);
      assert.equal(doneB.contentHash, sha256Hex(b.bytes));
      assert.equal(await received(2, "turn-c"), 0, "C, cancelled while waiting, was never read");
    } finally {
      clearInterval(trickle);
    }
  });
});
