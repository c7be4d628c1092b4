import assert from "node:assert/strict";
import { connect, type Settings } from "node:http2";
import { test } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { GRPC_SERVER_OPTIONS } from "@tributary/protocol";
import { listenGrpc } from "./listener.ts";
import { CONNECTION_WINDOW_BYTES, raiseReceiveWindows, STREAM_WINDOW_BYTES } from "./receive-windows.ts";

test("a connection to the coordinator's gRPC port gets its stream and connection receive windows", async () => {
  const server = new grpc.Server({ ...GRPC_SERVER_OPTIONS });
  const listener = await listenGrpc(server, grpc.ServerCredentials.createInsecure(), {
    host: "127.0.0.1",
    port: 0,
  });
  const session = connect(`http://127.0.0.1:${listener.port}`);
  try {
    assert.equal(listener.windowsRaised, true);
    // Already raised: a second call finds nothing new to raise.
    assert.equal(raiseReceiveWindows(server), 0);
    const settings = await new Promise<Settings>((resolve, reject) => {
      session.once("remoteSettings", resolve);
      session.once("error", reject);
    });
    assert.equal(settings.initialWindowSize, STREAM_WINDOW_BYTES);
    // The connection window's WINDOW_UPDATE comes before the ping's answer.
    await new Promise<void>((resolve, reject) => {
      session.ping((err) => (err ? reject(err) : resolve()));
    });
    assert.equal(session.state.remoteWindowSize, CONNECTION_WINDOW_BYTES);
  } finally {
    session.destroy();
    await listener.close({ destroy: true });
    server.forceShutdown();
  }
});

test("a server grpc-js created without HTTP/2 servers to find raises none (the coordinator then says so)", () => {
  const server = new grpc.Server();
  assert.equal(raiseReceiveWindows(server), 0);
});
