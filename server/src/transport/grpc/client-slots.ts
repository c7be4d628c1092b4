/**
 * Per-client bounds on streams open at once (uploads, downloads): one
 * client cannot hold more than its share of the coordinator's streams.
 *
 * @module
 */
import { QuotaExceededError } from "../../coordinator/errors.ts";

/** Takes one slot for a client; returns the (idempotent) release. */
export type TakeSlot = (clientId: string) => () => void;

/**
 * Counts each client's open streams of one kind and refuses one past `limit`
 * with a {@link QuotaExceededError} naming `quota` (`concurrent_uploads`).
 *
 * @example
 * const take = clientSlots(4, "concurrent_downloads", "downloads");
 * const release = take("alice"); // throws QuotaExceededError on the fifth
 * release();
 */
export function clientSlots(limit: number, quota: string, noun: string): TakeSlot {
  const open = new Map<string, number>();
  return (clientId) => {
    const n = open.get(clientId) ?? 0;
    if (n >= limit) {
      throw new QuotaExceededError(clientId, quota, limit, `${n} ${noun} of this client are still running`);
    }
    open.set(clientId, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (open.get(clientId) ?? 1) - 1;
      if (left <= 0) open.delete(clientId);
      else open.set(clientId, left);
    };
  };
}
