/** `TributaryClient.rounds()`: a round feed as an async iterator. */
import type { TributaryError } from "./errors.ts";
import type { RoundFeed } from "./round-feed.ts";
import type { RoundInfo } from "./round-info.ts";

/** Every round change of `feed` from now on (subscribed at once, not on the first `next()`). */
export function roundStream(feed: RoundFeed, signal?: AbortSignal): AsyncIterableIterator<RoundInfo> {
  const queue: RoundInfo[] = [];
  const first = feed.current();
  if (first !== undefined) queue.push(first);
  let failure: TributaryError | undefined;
  let ended = false;
  let wake: () => void = () => {};
  const stop = () => {
    ended = true;
    unsubscribe();
    signal?.removeEventListener("abort", onAbort);
    wake();
  };
  const unsubscribe = feed.subscribe(
    (r) => {
      queue.push(r);
      wake();
    },
    (err) => {
      failure = err;
      wake();
    },
  );
  const onAbort = () => stop();
  signal?.addEventListener("abort", onAbort, { once: true });
  if (signal?.aborted) stop();
  const it: AsyncIterableIterator<RoundInfo> = {
    async next() {
      for (;;) {
        if (queue.length > 0 && !ended) return { done: false, value: queue.shift()! };
        if (ended || failure?.code === "CLOSED") {
          stop();
          return { done: true, value: undefined };
        }
        if (failure !== undefined) {
          stop();
          throw failure;
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
    },
    async return() {
      stop();
      return { done: true, value: undefined };
    },
    [Symbol.asyncIterator]() {
      return it;
    },
  };
  return it;
}
