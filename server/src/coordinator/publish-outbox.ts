/**
 * The outbox of merged rounds not yet announced: it publishes each one,
 * retrying with backoff while NATS is unavailable, so a round merged while
 * NATS is down is announced once it is back.
 */

import { type Log, silentLog } from "@tributary/protocol";
import type { RoundResult } from "../core/model.ts";
import { type PublishedAdapter, PublishUnavailableError, type ResultPublisher } from "../core/publisher.ts";

/** A result waiting to be published; its adapter is loaded only when it is published. */
export interface PendingResult {
  readonly result: RoundResult;
  load(): Promise<PublishedAdapter>;
}

/** Options of {@link createPublishOutbox}. */
export interface PublishOutboxOptions {
  readonly publisher: ResultPublisher;
  /** The results not yet published, oldest first (the coordinator reads them from its journal). */
  readonly pending: () => Promise<readonly PendingResult[]>;
  /** Called after a result is published (the coordinator journals `published: true`). */
  readonly onPublished: (result: RoundResult) => Promise<void>;
  /** First retry delay after a failed pass (default 1 s); doubles up to `maxRetryMs`. */
  readonly retryMs?: number;
  /** Longest retry delay (default 30 s). */
  readonly maxRetryMs?: number;
  readonly log?: Log;
}

/** A running outbox loop. */
export interface PublishOutbox {
  /** Publishes pending results now (call it when a new result is ready). */
  kick(): void;
  /** Stops the loop, waiting for a pass in progress. */
  close(): Promise<void>;
}

/**
 * Starts the outbox loop; the first pass runs at once (results left over from
 * before a restart are published).
 *
 * @example
 * const outbox = createPublishOutbox({
 *   publisher,
 *   pending: async () => unpublished.map((result) => ({ result, load: () => store.loadResult(result) })),
 *   onPublished: (result) => journal.markPublished(result),
 * });
 * // after a round is merged and stored:
 * outbox.kick();
 */
export function createPublishOutbox(options: PublishOutboxOptions): PublishOutbox {
  const log = options.log ?? silentLog;
  const retryMs = options.retryMs ?? 1_000;
  const maxRetryMs = options.maxRetryMs ?? 30_000;
  let delayMs = retryMs;
  let closed = false;
  let again = false;
  let running: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;

  const publishOne = async ({
    result,
    load,
  }: PendingResult): Promise<"published" | "unavailable" | "failed"> => {
    try {
      await options.publisher.publish(result, await load());
      await options.onPublished(result);
      return "published";
    } catch (err) {
      const message = `round ${result.round} of ${result.federationId} not published: ${(err as Error).message}`;
      if (err instanceof PublishUnavailableError) {
        log.warn(`${message}; retrying in ${delayMs} ms`);
        return "unavailable";
      }
      log.error(message);
      return "failed";
    }
  };

  /** One pass over the pending results; true when all were published. */
  const pass = async (): Promise<boolean> => {
    let items: readonly PendingResult[];
    try {
      items = await options.pending();
    } catch (err) {
      log.error(`publish outbox: cannot list pending results: ${(err as Error).message}`);
      return false;
    }
    let ok = true;
    for (const item of items) {
      if (closed) return ok;
      const outcome = await publishOne(item);
      if (outcome === "published") continue;
      ok = false;
      // NATS is down: the others would fail the same way.
      if (outcome === "unavailable") break;
    }
    return ok;
  };

  const schedule = (ms: number) => {
    clearTimeout(timer);
    timer = setTimeout(kick, ms);
  };

  function kick(): void {
    if (closed) return;
    if (running !== undefined) {
      again = true;
      return;
    }
    clearTimeout(timer);
    timer = undefined;
    running = pass().then((ok) => {
      running = undefined;
      if (closed) return;
      if (again) {
        again = false;
        delayMs = retryMs;
        kick();
      } else if (!ok) {
        schedule(delayMs);
        delayMs = Math.min(delayMs * 2, maxRetryMs);
      } else {
        delayMs = retryMs;
      }
    });
  }

  kick();
  return {
    kick,
    async close() {
      closed = true;
      clearTimeout(timer);
      await running;
    },
  };
}
