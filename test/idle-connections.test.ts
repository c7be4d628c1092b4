/**
 * Idle connections do not pile up: a gRPC connection with no call in flight
 * for `maxConnectionIdleMs` is closed by the coordinator (HTTP/2 GOAWAY; the
 * client reconnects on its next call), and one carrying a WatchRounds stream
 * is not idle. Per-client stream limits are the operator's to set. Raw TCP
 * connections that never send an HTTP/2 preface, or send it and nothing else,
 * are closed after the same idle time.
 */
import assert from "node:assert/strict";
import { connect as connectTcp, type Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { ClientService, JoinRequestSchema, makeClient, WatchRoundsRequestSchema } from "@tributary/protocol";
import { waitFor } from "./helpers/expect.ts";
import { type Fixture, startFixture } from "./helpers/federation.ts";
import { bearer, call } from "./helpers/grpc-calls.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("idle gRPC connections", () => {
  let fx: Fixture;
  before(async () => {
    fx = await startFixture({ clients: 2, maxConnectionIdleMs: 400, clientStreams: { watches: 1 } });
  });
  after(async () => {
    await fx?.close();
  });

  it("are closed after the idle time; a connection with a WatchRounds stream is not idle", async () => {
    const [c1, c2] = fx.clients;
    const address = fx.service.endpoint.address;
    // Each on a connection of its own (grpc-js shares connections between channels otherwise).
    const own = { "grpc.use_local_subchannel_pool": 1 };
    const idle = makeClient(ClientService, address, grpc.credentials.createInsecure(), own);
    const watching = makeClient(ClientService, address, grpc.credentials.createInsecure(), own);
    try {
      const join = (client: typeof idle, token: string) =>
        call(
          client.join,
          client,
          create(JoinRequestSchema, { federationId: fx.federationId }),
          bearer(token),
        );
      await join(idle, c1.token);
      await join(watching, c2.token);
      const stream = watching.watchRounds(
        create(WatchRoundsRequestSchema, { federationId: fx.federationId }),
        bearer(c2.token),
      );
      stream.on("error", () => {});
      assert.equal(idle.getChannel().getConnectivityState(false), grpc.connectivityState.READY);
      await sleep(1_500);
      assert.equal(
        idle.getChannel().getConnectivityState(false),
        grpc.connectivityState.IDLE,
        "the idle connection was closed",
      );
      assert.equal(
        watching.getChannel().getConnectivityState(false),
        grpc.connectivityState.READY,
        "the watching one is open",
      );
      // The client simply reconnects on its next call.
      await join(idle, c1.token);
      // One WatchRounds stream per client here (--client-watches 1): a second is refused, naming the limit.
      const second = watching.watchRounds(
        create(WatchRoundsRequestSchema, { federationId: fx.federationId }),
        bearer(c2.token),
      );
      const refused = await new Promise<grpc.ServiceError>((resolve) => second.once("error", resolve));
      assert.equal(refused.code, grpc.status.RESOURCE_EXHAUSTED);
      assert.match(refused.details, /limit concurrent_watches = 1/);
      stream.cancel();
    } finally {
      idle.close();
      watching.close();
    }
  });

  it("closes raw TCP connections that never start HTTP/2, or start it and send nothing", async () => {
    const endpoint = fx.service.endpoint;
    const [host, port] = [endpoint.address.replace(/:\d+$/, ""), endpoint.port];
    await waitFor("the first test's connections to close", () => endpoint.openSockets === 0);
    // Each socket connects and then never reads: it would not even notice the coordinator's FIN.
    const open = (preface: boolean) =>
      new Promise<Socket>((resolve, reject) => {
        const s = connectTcp({ host, port }, () => {
          if (preface) s.write("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00");
          resolve(s);
        });
        s.on("error", reject);
      });
    const sockets = await Promise.all(Array.from({ length: 20 }, (_, i) => open(i % 2 === 1)));
    try {
      await waitFor("the coordinator to hold all 20", () => endpoint.openSockets === 20);
      const start = Date.now();
      // Idle limit 400 ms, then at most 400 ms for the peer to close its side.
      await waitFor("the coordinator to close all 20", () => endpoint.openSockets === 0);
      const took = Date.now() - start;
      assert.ok(took < 3_000, `the raw connections were held ${took} ms (idle limit 400 ms)`);
      assert.ok(
        sockets.every((s) => !s.destroyed),
        "the peers never closed their side themselves",
      );
    } finally {
      for (const s of sockets) s.destroy();
    }
  });
});
