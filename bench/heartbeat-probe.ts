/**
 * Worker of `npm run bench -- hostile`: the honest client, on its own event
 * loop (so the attacker's work in the main thread does not delay it), sends
 * a Heartbeat every 20 ms and posts each latency in ms; stops on any message.
 */
import { parentPort, workerData } from "node:worker_threads";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { ClientService, HeartbeatRequestSchema, makeClient } from "@tributary/protocol";
import { bearer, call } from "../test/helpers/grpc-calls.ts";

const { address, token, federationId } = workerData as {
  address: string;
  token: string;
  federationId: string;
};
const client = makeClient(ClientService, address, grpc.credentials.createInsecure());
let running = true;
parentPort?.on("message", () => {
  running = false;
});
while (running) {
  const t0 = performance.now();
  await call(client.heartbeat, client, create(HeartbeatRequestSchema, { federationId }), bearer(token));
  parentPort?.postMessage(performance.now() - t0);
  await new Promise((r) => setTimeout(r, 20));
}
client.close();
parentPort?.close();
