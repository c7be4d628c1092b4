/**
 * One `SubmitUpdate` stream as the benchmarks send it: the header, then the
 * bytes in 1 MiB chunks with backpressure (each write waits for "drain"),
 * stopping early once the coordinator has answered (a refusal).
 */
import { create } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import {
  CHUNK_BYTES,
  type ClientService,
  type GrpcClient,
  SubmitUpdateRequestSchema,
} from "@tributary/protocol";
import { bearer } from "../test/helpers/grpc-calls.ts";

/** The header fields a benchmark chooses (round 1). */
export interface StreamedUpdate {
  readonly federationId: string;
  readonly clientId: string;
  readonly updateId: string;
  readonly samples: number;
  readonly contentHash: string;
  readonly configJson: string;
  readonly bytes: Uint8Array;
}

/** Streams `u` as the client holding `token`; resolves with the call's error, or `null` at the ack. */
export function streamUpdate(
  client: GrpcClient<typeof ClientService>,
  token: string,
  u: StreamedUpdate,
): Promise<grpc.ServiceError | null> {
  return new Promise((resolve) => {
    let answered = false;
    const stream = client.submitUpdate(bearer(token), (err) => {
      answered = true;
      resolve(err ?? null);
    });
    stream.on("error", () => {});
    const send = async (msg: Parameters<typeof stream.write>[0]): Promise<boolean> => {
      if (stream.write(msg)) return true;
      return new Promise<boolean>((r) => {
        stream.once("drain", () => r(true));
        stream.once("error", () => r(false));
        stream.once("status", () => r(false));
      });
    };
    (async () => {
      const header = {
        federationId: u.federationId,
        round: 1,
        clientId: u.clientId,
        updateId: u.updateId,
        sampleCount: BigInt(u.samples),
        contentHash: u.contentHash,
        totalSize: BigInt(u.bytes.length),
        adapterConfigJson: u.configJson,
      };
      if (!(await send(create(SubmitUpdateRequestSchema, { payload: { case: "header", value: header } }))))
        return;
      for (let pos = 0; pos < u.bytes.length && !answered; pos += CHUNK_BYTES) {
        const value = u.bytes.subarray(pos, Math.min(u.bytes.length, pos + CHUNK_BYTES));
        if (!(await send(create(SubmitUpdateRequestSchema, { payload: { case: "chunk", value } })))) return;
      }
      stream.end();
    })().catch(() => {});
  });
}
