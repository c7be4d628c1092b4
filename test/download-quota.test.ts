/**
 * Downloads a client cannot abuse: a client's FetchAdapter streams that it
 * does not read stay open (the coordinator waits for flow control, holding
 * about one chunk each), a fifth concurrent one is RESOURCE_EXHAUSTED
 * (QUOTA_EXCEEDED, naming `concurrent_downloads`), and cancelling them frees
 * the quota. The merged adapter is several MiB, more than HTTP/2 buffers.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { type ClientHttp2Stream, connect as connectHttp2 } from "node:http2";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import { status } from "@grpc/grpc-js";
import { FetchAdapterRequestSchema, JoinRequestSchema, statusDetailsOf } from "@tributary/protocol";
import { expectError, waitFor } from "./helpers/expect.ts";
import { type BigClient, createBigFederation, type Fixture, startFixture } from "./helpers/federation.ts";
import { bearer, call, fetchAdapter, upload } from "./helpers/grpc-calls.ts";
import { unreadDownload } from "./helpers/unread-download.ts";

describe("concurrent downloads per client", { timeout: 120_000 }, () => {
  let fx: Fixture;
  const federationId = "big-downloads";
  let big: BigClient[] = [];
  before(async () => {
    fx = await startFixture({ clients: 1 });
    big = await createBigFederation(fx, federationId, ["d-1", "d-2"]);
    for (const c of big) {
      await call(fx.client.join, fx.client, create(JoinRequestSchema, { federationId }), bearer(c.token));
    }
    for (const c of big) {
      await upload(fx.client, c.token, {
        federationId,
        round: 1,
        clientId: c.id,
        updateId: `u-${c.id}`,
        configJson: await readFile(`${c.dir}/adapter_config.json`, "utf8"),
        bytes: c.bytes,
      });
    }
    await waitFor(
      "the round to publish",
      () => fx.service.coordinator.rounds(federationId)[0]?.round.state === "published",
      60_000,
    );
  });
  after(async () => {
    await fx?.close();
  });

  it("holds four unread downloads, refuses a fifth naming the limit, and frees them on cancel", async () => {
    const req = create(FetchAdapterRequestSchema, { federationId, selector: { case: "round", value: 1 } });
    const [c] = big;
    const streams: ClientHttp2Stream[] = [];
    const session = connectHttp2(`http://${fx.service.endpoint.address}`);
    session.on("error", () => {});
    try {
      for (let i = 0; i < 4; i++) streams.push(unreadDownload(session, c.token, req));
      await new Promise((r) => setTimeout(r, 300));
      const meta = await expectError(
        fetchAdapter(fx.client, c.token, req),
        status.RESOURCE_EXHAUSTED,
        "QUOTA_EXCEEDED",
        /4 downloads of this client are still running \(limit concurrent_downloads = 4\)/,
      );
      assert.deepEqual(meta, { quota: "concurrent_downloads", limit: "4" });
      // Another client is not limited by this one.
      const other = await fetchAdapter(fx.client, big[1].token, req);
      assert.ok(other.bytes.length > 4 * 1024 * 1024);
    } finally {
      for (const s of streams) s.destroy();
      session.destroy();
    }
    await waitFor("the downloads to be released", async () => {
      try {
        const got = await fetchAdapter(fx.client, c.token, req);
        return got.bytes.length > 0;
      } catch (err) {
        if (statusDetailsOf(err as grpc.ServiceError)?.errorInfo?.reason === "QUOTA_EXCEEDED") return false;
        throw err;
      }
    });
  });
});
