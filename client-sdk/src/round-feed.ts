/**
 * The session's `WatchRounds` stream: kept open for as long as the client is
 * joined (the coordinator counts a client as connected while one is open, and
 * picks cohorts among connected clients), reopened with backoff whenever it
 * drops, and remembered as the latest state of every round seen.
 */
import { create } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import { status } from "@grpc/grpc-js";
import { WatchRoundsRequestSchema, type WatchRoundsResponse } from "@tributary/protocol";
import type { Channel } from "./channel.ts";
import { fromServiceError, isServiceError, TributaryError } from "./errors.ts";
import { backoffDelay, type ResolvedRetry } from "./retry.ts";
import { type RoundInfo, roundFromProto } from "./round-info.ts";

/** A federation's rounds as this session sees them. */
export interface RoundFeed {
  /** Latest state of round `n`, if seen. */
  round(n: number): RoundInfo | undefined;
  /** The highest-numbered round seen. */
  current(): RoundInfo | undefined;
  /** Records a round learned another way (e.g. `Join`'s response). */
  note(round: RoundInfo): void;
  /** Calls `listener` with every round change from now on; returns the unsubscribe function. */
  subscribe(listener: (round: RoundInfo) => void, onFailure?: (err: TributaryError) => void): () => void;
  /** The first round, already seen (lowest number first) or still to come, that `match`es. */
  waitFor(match: (round: RoundInfo) => boolean, signal?: AbortSignal): Promise<RoundInfo>;
  /** Whether the stream is open and has delivered a message. */
  isConnected(): boolean;
  /** Cancels the stream; waiting calls reject. */
  close(): void;
}

/** Statuses after which reopening the stream cannot help. */
const PERMANENT = new Set<number>([
  status.UNAUTHENTICATED,
  status.PERMISSION_DENIED,
  status.NOT_FOUND,
  status.INVALID_ARGUMENT,
]);

/** Opens the watch of `federationId` and keeps it open until `close()`. */
export function openRoundFeed(channel: Channel, federationId: string, retry: ResolvedRetry): RoundFeed {
  const rounds = new Map<number, RoundInfo>();
  const listeners = new Set<{ change: (r: RoundInfo) => void; fail?: (err: TributaryError) => void }>();
  let failure: TributaryError | undefined;
  let closed = false;
  let connected = false;
  let failures = 0;
  let stream: grpc.ClientReadableStream<WatchRoundsResponse> | undefined;
  let timer: NodeJS.Timeout | undefined;

  const note = (r: RoundInfo) => {
    rounds.set(r.number, r);
    for (const l of [...listeners]) l.change(r);
  };
  const fail = (err: TributaryError) => {
    failure = err;
    for (const l of [...listeners]) l.fail?.(err);
  };

  const open = () => {
    if (closed) return;
    const s = channel.client.watchRounds(
      create(WatchRoundsRequestSchema, { federationId }),
      channel.metadata(),
    ) as grpc.ClientReadableStream<WatchRoundsResponse>;
    stream = s;
    let ended = false;
    const end = (err?: unknown) => {
      if (ended) return;
      ended = true;
      connected = false;
      if (closed) return;
      if (isServiceError(err) && PERMANENT.has(err.code)) return fail(fromServiceError(err));
      failures++;
      timer = setTimeout(open, backoffDelay(Math.min(failures + 1, 30), retry));
    };
    s.on("data", (msg: WatchRoundsResponse) => {
      connected = true;
      failures = 0;
      if (msg.round !== undefined) note(roundFromProto(msg.round));
    });
    s.on("error", end);
    s.on("end", () => end());
  };
  open();

  const feed: RoundFeed = {
    round: (n) => rounds.get(n),
    current() {
      let top: RoundInfo | undefined;
      for (const r of rounds.values()) if (top === undefined || r.number > top.number) top = r;
      return top;
    },
    note,
    subscribe(change, onFailure) {
      const entry = { change, fail: onFailure };
      listeners.add(entry);
      return () => void listeners.delete(entry);
    },
    waitFor(match, signal) {
      return new Promise((resolve, reject) => {
        if (signal?.aborted) return reject(signal.reason);
        if (failure !== undefined) return reject(failure);
        const seen = [...rounds.values()].sort((a, b) => a.number - b.number).find(match);
        if (seen !== undefined) return resolve(seen);
        const onAbort = () => {
          unsubscribe();
          reject(signal?.reason);
        };
        const unsubscribe = feed.subscribe(
          (r) => {
            if (!match(r)) return;
            unsubscribe();
            signal?.removeEventListener("abort", onAbort);
            resolve(r);
          },
          (err) => {
            unsubscribe();
            signal?.removeEventListener("abort", onAbort);
            reject(err);
          },
        );
        signal?.addEventListener("abort", onAbort, { once: true });
      });
    },
    isConnected: () => connected,
    close() {
      if (closed) return;
      closed = true;
      clearTimeout(timer);
      stream?.cancel();
      fail(failure ?? closedError());
    },
  };
  return feed;
}

function closedError(): TributaryError {
  return new TributaryError("CLOSED", "the client was closed");
}
