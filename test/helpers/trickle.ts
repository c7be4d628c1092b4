/**
 * A slow uploader, for the fairness test and the hostile bench: an upload of
 * an adapter that sends one byte every `everyMs` (never idle for long), as
 * `slow-<client>`, until the coordinator answers or `stop()` cancels it.
 */
import { create } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import {
  type ClientService,
  type GrpcClient,
  SubmitUpdateRequestSchema,
  type SubmitUpdateResponse,
  sha256Hex,
} from "@tributary/protocol";
import { bearer } from "./grpc-calls.ts";

/** What a trickling upload sends. */
export interface TrickledUpdate {
  readonly federationId: string;
  readonly clientId: string;
  readonly token: string;
  readonly configJson: string;
  readonly bytes: Uint8Array;
}

/** A running trickle. */
export interface Trickle {
  /** Settles with the coordinator's answer. */
  readonly done: Promise<SubmitUpdateResponse>;
  /** Whether the coordinator has answered. */
  settled(): boolean;
  /** Stops sending and cancels the call. */
  stop(): void;
}

/** Starts trickling `u` to `client` (see the module comment). */
export function trickle(
  client: GrpcClient<typeof ClientService>,
  u: TrickledUpdate,
  everyMs: number,
): Trickle {
  let timer: NodeJS.Timeout | undefined;
  let settled = false;
  let cancel = () => {};
  const done = new Promise<SubmitUpdateResponse>((resolve, reject) => {
    const stream = client.submitUpdate(
      bearer(u.token),
      (err: grpc.ServiceError | null, res?: SubmitUpdateResponse) => {
        clearInterval(timer);
        settled = true;
        if (err) reject(err);
        else resolve(res!);
      },
    );
    stream.on("error", () => {});
    cancel = () => stream.cancel();
    stream.write(
      create(SubmitUpdateRequestSchema, {
        payload: {
          case: "header",
          value: {
            federationId: u.federationId,
            round: 1,
            clientId: u.clientId,
            updateId: `slow-${u.clientId}`,
            sampleCount: 10n,
            contentHash: sha256Hex(u.bytes),
            totalSize: BigInt(u.bytes.length),
            adapterConfigJson: u.configJson,
          },
        },
      }),
    );
    let sent = 0;
    timer = setInterval(() => {
      if (sent >= u.bytes.length - 1) return;
      stream.write(
        create(SubmitUpdateRequestSchema, {
          payload: { case: "chunk", value: u.bytes.subarray(sent, sent + 1) },
        }),
      );
      sent++;
    }, everyMs);
  });
  done.catch(() => undefined);
  return {
    done,
    settled: () => settled,
    stop: () => {
      clearInterval(timer);
      cancel();
    },
  };
}
