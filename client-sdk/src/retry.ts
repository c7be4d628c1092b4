/**
 * Retrying transient failures with exponential backoff and jitter; anything
 * permanent is mapped to its typed error at once, without a retry.
 */
import { fromServiceError, isServiceError, isTransient, statusName, UnavailableError } from "./errors.ts";

/** How calls are retried (every field optional). */
export interface RetryOptions {
  /** Tries per call, the first included (default 6). */
  readonly attempts?: number;
  /** Backoff before the second try, in ms (default 250); it doubles each time. */
  readonly initialDelayMs?: number;
  /** Longest backoff, in ms (default 10 000). */
  readonly maxDelayMs?: number;
  /** Called before each retry, e.g. to log it. */
  readonly onRetry?: (info: RetryInfo) => void;
}

/** What {@link RetryOptions.onRetry} is told. */
export interface RetryInfo {
  /** What is being retried, e.g. `"submit round 3"`. */
  readonly what: string;
  /** The try about to start (2 for the first retry). */
  readonly attempt: number;
  readonly delayMs: number;
  /** The transient failure, e.g. `"UNAVAILABLE: No connection established"`. */
  readonly reason: string;
}

/** Retry settings with defaults applied. */
export type ResolvedRetry = Required<Omit<RetryOptions, "onRetry">> & Pick<RetryOptions, "onRetry">;

/** `options` with defaults applied. */
export function resolveRetry(options: RetryOptions = {}): ResolvedRetry {
  return {
    attempts: Math.max(1, options.attempts ?? 6),
    initialDelayMs: options.initialDelayMs ?? 250,
    maxDelayMs: options.maxDelayMs ?? 10_000,
    onRetry: options.onRetry,
  };
}

/** Backoff before try `attempt` (2, 3, …): exponential, capped, with "equal jitter" (half fixed, half random). */
export function backoffDelay(
  attempt: number,
  retry: ResolvedRetry,
  random: () => number = Math.random,
): number {
  const base = Math.min(retry.maxDelayMs, retry.initialDelayMs * 2 ** Math.max(0, attempt - 2));
  return Math.round(base / 2 + (base / 2) * random());
}

/** Resolves after `ms`, or rejects with `signal.reason` when it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Runs `fn(attempt)` until it succeeds; transient gRPC failures are retried
 * after a backoff, permanent ones become their typed error at once, and the
 * last transient failure becomes an {@link UnavailableError} when tries run out.
 * Non-gRPC errors propagate unchanged.
 *
 * @example
 * const res = await withRetry("join", resolveRetry(), () => callUnary(client, "join", req, md));
 */
export async function withRetry<T>(
  what: string,
  retry: ResolvedRetry,
  fn: (attempt: number) => Promise<T>,
  signal?: AbortSignal,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    signal?.throwIfAborted();
    try {
      return await fn(attempt);
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      if (!isServiceError(err)) throw err;
      if (!isTransient(err)) throw fromServiceError(err);
      const reason = `${statusName(err.code)}: ${err.details || err.message}`;
      if (attempt >= retry.attempts) {
        throw new UnavailableError(
          statusName(err.code),
          `${what}: coordinator unreachable after ${attempt} tries (${err.details || err.message})`,
          { cause: err },
        );
      }
      const delayMs = backoffDelay(attempt + 1, retry);
      retry.onRetry?.({ what, attempt: attempt + 1, delayMs, reason });
      await sleep(delayMs, signal);
    }
  }
}
