/**
 * A `ClientService.WatchRounds` stream as a queue the integration tests can
 * wait on: `next(predicate)` resolves with the first round message (already
 * received or still to come) that matches.
 */
import { create } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import {
  type ClientService,
  type GrpcClient,
  type Round,
  WatchRoundsRequestSchema,
} from "@tributary/protocol";
import { bearer } from "./grpc-calls.ts";

/** An open round watch. */
export interface RoundWatch {
  /** Every round message received so far. */
  readonly seen: readonly Round[];
  /** The first not yet consumed message matching `match`, waiting up to `timeoutMs` for it. */
  next(what: string, match: (r: Round) => boolean, timeoutMs?: number): Promise<Round>;
  /** Cancels the stream. */
  close(): void;
}

/** Opens `WatchRounds` for `federationId` as the client holding `token`. */
export function watchRounds(
  client: GrpcClient<typeof ClientService>,
  token: string,
  federationId: string,
): RoundWatch {
  const seen: Round[] = [];
  let consumed = 0;
  let wake: () => void = () => {};
  let failure: Error | undefined;
  const stream = client.watchRounds(
    create(WatchRoundsRequestSchema, { federationId }),
    bearer(token),
  ) as grpc.ClientReadableStream<{ round?: Round }>;
  stream.on("data", (msg) => {
    if (msg.round !== undefined) seen.push(msg.round);
    wake();
  });
  stream.on("error", (err: grpc.ServiceError) => {
    if (err.code !== 1 /* CANCELLED */) failure = err;
    wake();
  });
  return {
    seen,
    async next(what, match, timeoutMs = 10_000) {
      const end = Date.now() + timeoutMs;
      for (;;) {
        if (failure !== undefined) throw failure;
        for (let i = consumed; i < seen.length; i++) {
          if (match(seen[i])) {
            consumed = i + 1;
            return seen[i];
          }
        }
        const left = end - Date.now();
        if (left <= 0) {
          const states = seen.map((r) => `${r.number}:${r.state}`).join(", ");
          throw new Error(`timed out waiting for ${what} (seen: ${states})`);
        }
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    },
    close() {
      stream.cancel();
    },
  };
}
