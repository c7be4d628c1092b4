/**
 * Which merge workers are alive, kept in the KV bucket `tributary-workers`:
 * each worker rewrites its entry every few seconds and deletes it when it
 * stops; a leader watches the bucket and counts a worker alive while its
 * entry was rewritten within {@link WORKER_TTL_MS} (an entry that merely
 * expires shows no delete to a watch, so age decides).
 */
import type { KV } from "@nats-io/kv";
import type { Log } from "../core/log.ts";
import { WORKER_TTL_MS, type WorkerEntry, workerKey } from "./queue.ts";
import { decodeJson, encodeJson } from "./task-codec.ts";

/** The workers a leader sees. */
export interface WorkerRegistry {
  /** Workers whose entry was rewritten within the TTL. */
  alive(): WorkerEntry[];
  close(): void;
}

/**
 * Watches `kv` for workers' entries.
 *
 * @example
 * const workers = await watchWorkers(kv);
 * if (workers.alive().length > 0) dispatch();
 */
export async function watchWorkers(kv: KV, log?: Log, now: () => number = Date.now): Promise<WorkerRegistry> {
  const seen = new Map<string, { entry: WorkerEntry; at: number }>();
  const watch = await kv.watch({ key: "w.>" });
  void (async () => {
    for await (const e of watch) {
      if (e.operation !== "PUT") {
        const was = seen.get(e.key);
        if (was !== undefined) log?.info("merge worker left", { worker: was.entry.id });
        seen.delete(e.key);
        continue;
      }
      const entry = decodeJson<WorkerEntry>(e.value);
      if (!seen.has(e.key)) log?.info("merge worker attached", { ...entry });
      seen.set(e.key, { entry, at: now() });
    }
  })().catch((err: unknown) => log?.warn("the watch of merge workers ended", { error: err }));
  return {
    alive() {
      const t = now();
      return [...seen.values()].filter((s) => t - s.at <= WORKER_TTL_MS).map((s) => s.entry);
    },
    close() {
      watch.stop();
    },
  };
}

/**
 * Keeps `entry` in `kv` — rewritten every third of the TTL — until `stop()`,
 * which deletes it so leaders stop counting on this worker at once.
 *
 * @example
 * const registration = await announceWorker(kv, { id: "w1", threads: 4, backend: "blas", host: "gpu-3" });
 * await registration.stop();
 */
export async function announceWorker(
  kv: KV,
  entry: WorkerEntry,
  log?: Log,
): Promise<{ stop(): Promise<void> }> {
  const key = workerKey(entry.id);
  const value = encodeJson(entry);
  await kv.put(key, value);
  const timer = setInterval(() => {
    kv.put(key, value).catch((err: unknown) =>
      log?.warn("could not refresh this worker's entry; trying again", { error: err }),
    );
  }, WORKER_TTL_MS / 3);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await kv.delete(key).catch(() => undefined);
    },
  };
}
