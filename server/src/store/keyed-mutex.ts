/** Runs async critical sections one at a time per key. */

/** Runs `fn` after every earlier section with the same key has settled. */
export type KeyedMutex = <T>(key: string, fn: () => Promise<T>) => Promise<T>;

/**
 * A mutex per string key; keys with nothing queued hold no memory.
 *
 * @example
 * const locked = createKeyedMutex();
 * await locked("fed/3/client-7", () => commitSlot());
 */
export function createKeyedMutex(): KeyedMutex {
  const tails = new Map<string, Promise<unknown>>();
  return async <T>(key: string, fn: () => Promise<T>): Promise<T> => {
    const before = tails.get(key) ?? Promise.resolve();
    const run = before.then(fn); // `before` never rejects
    const tail = run.catch(() => undefined);
    tails.set(key, tail);
    try {
      return await run;
    } finally {
      if (tails.get(key) === tail) tails.delete(key);
    }
  };
}
