/**
 * JetStream's passing failures — a request that timed out or found no
 * responder while a cluster node is down, a stream re-electing its leader,
 * the client reconnecting to another node — and retrying an operation
 * through them for a bounded time. Only operations that are safe to repeat
 * go through here: reads, purges, and publishes that carry a message id (a
 * repeat is then a duplicate, not a second copy) or an expected sequence.
 */
import { JetStreamApiError } from "@nats-io/jetstream";
import { StoreUnavailableError } from "../core/store-errors.ts";

/** JetStream's "temporarily unavailable" (no leader yet). */
const TEMPORARILY_UNAVAILABLE = 10008;

const TRANSIENT_NAMES = new Set([
  "TimeoutError",
  "NoRespondersError",
  "ConnectionError",
  "JetStreamNotEnabled",
]);

/** Whether `err` (or what caused it) is a passing failure of the cluster or the connection. */
export function isTransient(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    if (TRANSIENT_NAMES.has(e.name)) return true;
    if (e instanceof JetStreamApiError && (e.code === TEMPORARILY_UNAVAILABLE || e.status === 503))
      return true;
    if (e.name === "RequestError" && (e as { isNoResponders?: () => boolean }).isNoResponders?.() === true)
      return true;
  }
  return false;
}

/** How long {@link retryTransient} keeps trying by default. */
export const TRANSIENT_BUDGET_MS = 30_000;

/**
 * Runs `fn`, again after each transient failure (`isTransient`) until
 * `budgetMs` has passed, then throws `StoreUnavailableError`; any other failure is thrown as it is.
 *
 * @example
 * const info = await retryTransient(() => jsm.streams.info("TRIBUTARY_JOURNAL"));
 */
export async function retryTransient<T>(fn: () => Promise<T>, budgetMs = TRANSIENT_BUDGET_MS): Promise<T> {
  const deadline = Date.now() + budgetMs;
  for (let pause = 100; ; pause = Math.min(pause * 2, 1_000)) {
    try {
      return await fn();
    } catch (err) {
      if (!isTransient(err)) throw err;
      if (Date.now() + pause > deadline) {
        throw new StoreUnavailableError(
          `the JetStream cluster did not answer for ${Math.round(budgetMs / 1000)} s (${(err as Error).message}); retry`,
          { cause: err },
        );
      }
      await new Promise((r) => setTimeout(r, pause));
    }
  }
}

/** Options of {@link retryUntilReady}. */
export interface ReadyOptions {
  /** Where the cluster was looked for, named in the error when it never answers. */
  readonly servers: readonly string[];
  /** What is being created, named in the error (e.g. "the lease bucket"). */
  readonly what: string;
  /** The verb of the error (default "create"; "find" for what someone else creates). */
  readonly action?: string;
  /** How long to keep trying (default 60 s). */
  readonly readyTimeoutMs?: number;
  /** Told about each failed try. */
  readonly onRetry?: (err: unknown) => void;
}

/**
 * Runs `fn` — creating streams and buckets when a coordinator starts — again
 * after any failure until `readyTimeoutMs` has passed: a cluster that is still
 * electing its leaders, or has a node down while replicas are placed, times
 * out or refuses for a while. The last failure is thrown as a
 * `StoreUnavailableError` naming `what` and the servers.
 *
 * @example
 * const kv = await retryUntilReady(() => kvm.create("tributary-leases", opts), { servers, what: "the lease bucket" });
 */
export async function retryUntilReady<T>(fn: () => Promise<T>, options: ReadyOptions): Promise<T> {
  const budgetMs = options.readyTimeoutMs ?? 60_000;
  const deadline = Date.now() + budgetMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() + 500 > deadline) {
        throw new StoreUnavailableError(
          `could not ${options.action ?? "create"} ${options.what} on the NATS JetStream cluster at ${options.servers.join(",")} ` +
            `within ${Math.round(budgetMs / 1000)} s (${(err as Error).message ?? String(err)}); ` +
            "check that the servers run with JetStream (-js) and that their cluster has formed",
          { cause: err },
        );
      }
      options.onRetry?.(err);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}
