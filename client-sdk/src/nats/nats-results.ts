/**
 * Merged adapters from NATS: the coordinator announces every published round
 * on `tributary.rounds.<federation>` and stores its adapter in a JetStream
 * object store, so clients download from NATS instead of the coordinator.
 * This follows the announcements in the background (the last one first) and
 * fetches an announced adapter on request; anything missing or failing here
 * makes the caller fall back to gRPC.
 */
import type { ResultAdapter, RoundAnnouncement } from "@tributary/protocol";
import type { ResultWatch } from "./subscriber.ts";

/** Announced results of one federation. */
export interface NatsResults {
  /**
   * The adapter of `round` with `contentHash`, if NATS announces it within
   * `waitMs`; `undefined` when it does not (or announces a later round only,
   * or the download fails).
   */
  fetch(
    round: number,
    contentHash: string,
    waitMs: number,
    signal?: AbortSignal,
  ): Promise<ResultAdapter | undefined>;
  close(): Promise<void>;
}

/** Starts following `federationId`'s announcements on `servers` (the NATS client is loaded on first use). */
export async function openNatsResults(
  servers: string | readonly string[],
  federationId: string,
): Promise<NatsResults> {
  const { watchResults } = await import("./subscriber.ts");
  const watch: ResultWatch = watchResults({ servers, federationId, reconnectTimeWaitMs: 1_000 });
  const seen = new Map<number, RoundAnnouncement>();
  const listeners = new Set<() => void>();
  let newest = 0;
  let closed = false;
  const follow = (async () => {
    try {
      for await (const a of watch) {
        seen.set(a.round, a);
        newest = Math.max(newest, a.round);
        for (const l of [...listeners]) l();
      }
    } catch {
      // The watch failed for good; every fetch now falls back to gRPC.
    }
  })();

  /** The announcement of `round`, once seen; `undefined` after `waitMs` or once a later round is announced. */
  const announced = (round: number, waitMs: number, signal?: AbortSignal) =>
    new Promise<RoundAnnouncement | undefined>((resolve, reject) => {
      const settled = () => closed || seen.has(round) || newest > round;
      if (settled()) return resolve(seen.get(round));
      const stop = () => {
        clearTimeout(timer);
        listeners.delete(listener);
        signal?.removeEventListener("abort", onAbort);
      };
      const finish = () => {
        stop();
        resolve(seen.get(round));
      };
      const listener = () => {
        if (settled()) finish();
      };
      const onAbort = () => {
        stop();
        reject(signal?.reason);
      };
      const timer = setTimeout(finish, waitMs);
      listeners.add(listener);
      signal?.addEventListener("abort", onAbort, { once: true });
    });

  return {
    async fetch(round, contentHash, waitMs, signal) {
      const a = await announced(round, waitMs, signal);
      const variant = a?.rankVariants?.find((v) => v.contentHash === contentHash);
      if (a === undefined || (a.contentHash !== contentHash && variant === undefined)) return undefined;
      try {
        return await watch.fetchAdapter(a, variant !== undefined ? { rank: variant.rank } : {});
      } catch {
        return undefined;
      }
    },
    async close() {
      closed = true;
      for (const l of [...listeners]) l();
      await watch.close();
      await follow;
    },
  };
}
