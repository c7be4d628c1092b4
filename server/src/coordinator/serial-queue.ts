/**
 * A promise queue that runs async tasks one at a time, in call order, so
 * that concurrent events cannot interleave inside a state transition.
 */

/** Runs tasks strictly one after another. */
export interface SerialQueue {
  /** Runs `task` after every task queued before it; a failing task does not stop later ones. */
  run<T>(task: () => Promise<T> | T): Promise<T>;
  /**
   * Resolves once the queue is empty: every task has settled, including tasks
   * queued while waiting, and a macrotask turn passed without a new one.
   */
  idle(): Promise<void>;
}

/**
 * A new, empty queue. Tasks must not wait on a task queued after them (that
 * would deadlock): run nested steps as plain calls inside the task instead.
 *
 * @example
 * const queue = createSerialQueue();
 * await Promise.all([queue.run(closeIfQuorum), queue.run(closeIfQuorum)]); // never both at once
 */
export function createSerialQueue(): SerialQueue {
  let tail: Promise<void> = Promise.resolve();
  return {
    run<T>(task: () => Promise<T> | T): Promise<T> {
      const result = tail.then(task);
      tail = result.then(
        () => undefined,
        () => undefined,
      );
      return result;
    },
    async idle(): Promise<void> {
      for (;;) {
        const seen = tail;
        await seen;
        await new Promise<void>((resolve) => setImmediate(resolve));
        if (seen === tail) return;
      }
    },
  };
}
