/**
 * A merge worker (`tributary worker`): pulls module-merge tasks from the
 * work queue as its threads free up, fetches from each client's update
 * object only the chunks that hold the module's two factors (into a sparse
 * local copy, kept while the round's other modules come), merges the module
 * on its own pool with the same code a coordinator runs, and publishes the
 * outcome to the leader's subject — with the merged factors inside it, or,
 * when they are too large for a message, in the result bucket — then
 * acknowledges the task. While a
 * task runs it tells JetStream it is still working; killed, it stops
 * telling, and the task goes to another worker once the ack wait passes. A
 * duplicate outcome is harmless: the leader takes the first.
 */
import { createHash } from "node:crypto";
import { rm } from "node:fs/promises";
import { hostname } from "node:os";
import type { JsMsg } from "@nats-io/jetstream";
import { Objm } from "@nats-io/obj";
import type { Log } from "../core/log.ts";
import type { MergeRunner } from "../core/merge-runner.ts";
import { StoreUnavailableError } from "../core/store-errors.ts";
import { mergeModuleFiles } from "../pipeline/module-files.ts";
import { createKeyedMutex } from "../store/keyed-mutex.ts";
import { openKvBucket } from "../store-jetstream/kv-bucket.ts";
import { DEFAULT_JETSTREAM_NAMES } from "../store-jetstream/names.ts";
import { type ByteRange, createObjectRanges, type ObjectRanges } from "../store-jetstream/object-ranges.ts";
import { openJetStream } from "../store-jetstream/setup.ts";
import { isTransient, retryTransient, retryUntilReady } from "../store-jetstream/transient.ts";
import { MERGE_QUEUE, WORKER_TTL_MS, WORKING_EVERY_MS } from "./queue.ts";
import {
  decodeJson,
  encodeModuleResult,
  encodeOutcome,
  failureOf,
  filesOf,
  INLINE_RESULT_MAX,
  type MergeTask,
  type ObjectRef,
  type TaskOutcome,
} from "./task-codec.ts";
import { announceWorker } from "./worker-registry.ts";

/** Tasks a worker holds per merge thread: fetching, merging, returning. */
export const TASKS_PER_THREAD = 4;

/** Options of {@link startMergeWorker}. */
export interface MergeWorkerOptions {
  /** The JetStream cluster of the coordinators' store. */
  readonly servers: readonly string[];
  /** This worker's name (default: host name and pid). */
  readonly id?: string;
  /** The merge pool it merges on (its threads are the tasks it takes at once). */
  readonly pool: MergeRunner;
  /** Where the fetched parts of update objects are kept. */
  readonly cacheDir: string;
  /**
   * Merged modules up to this many bytes go back inside the outcome message;
   * larger ones as an object of the result bucket (default {@link INLINE_RESULT_MAX},
   * within NATS's default 1 MiB max payload).
   */
  readonly maxInlineResult?: number;
  /** How long an object's copy stays after its last use (default 10 min). */
  readonly cacheIdleMs?: number;
  readonly log?: Log;
}

/** A running worker. */
export interface MergeWorker {
  readonly id: string;
  /** Tasks it holds at once ({@link TASKS_PER_THREAD} per merge thread). */
  readonly slots: number;
  /** Tasks it finished (merged or reported as failed). */
  done(): number;
  /** Stops taking tasks, finishes those it holds, leaves. */
  close(): Promise<void>;
}

/**
 * Attaches to the queue a coordinator created (waiting for one to start, if
 * none has yet) and starts taking tasks.
 *
 * @example
 * const worker = await startMergeWorker({ servers: ["nats://n1:4222"], pool, cacheDir: "data/worker" });
 */
export async function startMergeWorker(options: MergeWorkerOptions): Promise<MergeWorker> {
  const { pool, log } = options;
  const id = options.id ?? `${hostname()}-${process.pid}`;
  // Tasks held at once: while some merge on the pool's threads, the others
  // fetch their factors (a task spends most of its time waiting on NATS).
  const slots = TASKS_PER_THREAD * Math.max(1, pool.threads);
  let waiting = false;
  const onRetry = (err: unknown) => {
    if (!waiting)
      log?.warn("waiting for a coordinator to create the store and the merge queue", { error: err });
    waiting = true;
  };
  const forever = { servers: options.servers, readyTimeoutMs: Number.POSITIVE_INFINITY, onRetry };
  const h = await openJetStream(DEFAULT_JETSTREAM_NAMES, {
    ...forever,
    replicas: 1,
    attach: true,
    name: `tributary-worker-${id}`,
  });
  const closers: (() => Promise<void> | void)[] = [() => h.close()];
  const closeAll = async () => {
    for (const c of closers.reverse()) await c();
  };
  try {
    await retryUntilReady(() => h.jsm.consumers.info(MERGE_QUEUE.taskStream, MERGE_QUEUE.consumer), {
      ...forever,
      action: "find",
      what: "the merge task queue",
    });
    const { nc: kvNc, kv } = await openKvBucket({
      servers: options.servers,
      name: `tributary-worker-${id}-presence`,
      bucket: MERGE_QUEUE.workerBucket,
      ttlMs: WORKER_TTL_MS,
      replicas: 1,
    });
    closers.push(() => kvNc.close());
    const results = await new Objm(h.bulk.js).open(MERGE_QUEUE.resultBucket);
    const ranges = createObjectRanges(
      h,
      DEFAULT_JETSTREAM_NAMES.bucket,
      options.cacheDir,
      createKeyedMutex(),
    );
    const used = new Map<string, { name: string; at: number }>();
    const consumer = await h.js.consumers.get(MERGE_QUEUE.taskStream, MERGE_QUEUE.consumer);

    let finished = 0;
    /** Each object's sparse copy, with the task's factors in it. */
    const fetchFactors = async (task: MergeTask): Promise<Map<string, string>> => {
      const wanted = new Map<string, { object: ObjectRef; ranges: ByteRange[] }>();
      for (const c of task.module.clients) {
        for (const f of [c.a, c.b]) {
          const entry = wanted.get(f.object.name) ?? { object: f.object, ranges: [] };
          entry.ranges.push({ offset: f.at.offset, length: f.at.byteLength });
          wanted.set(f.object.name, entry);
        }
      }
      const paths = new Map<string, string>();
      await Promise.all(
        [...wanted.values()].map(async ({ object, ranges: r }) => {
          const path = await ranges.fill(object.name, object.size, ["objects", ...object.name.split("/")], r);
          used.set(path, { name: object.name, at: Date.now() });
          paths.set(object.name, path);
        }),
      );
      return paths;
    };

    const handle = async (m: JsMsg): Promise<void> => {
      const task = decodeJson<MergeTask>(m.data);
      const delivery = m.info.deliveryCount;
      const fields = {
        task: task.id,
        module: task.module.name,
        clients: task.module.clients.length,
        delivery,
      };
      log?.info("merging module", fields);
      const working = setInterval(() => m.working(), WORKING_EVERY_MS);
      let outcome: TaskOutcome;
      let inline: Uint8Array | undefined;
      try {
        const t0 = performance.now();
        const paths = await fetchFactors(task);
        const t1 = performance.now();
        const files = filesOf(task, (o) => paths.get(o.name) ?? "");
        const entry = await mergeModuleFiles(pool, files, task.opts);
        const t2 = performance.now();
        const bytes = encodeModuleResult(entry.result);
        if (bytes.length <= (options.maxInlineResult ?? INLINE_RESULT_MAX)) {
          inline = bytes;
          outcome = { taskId: task.id, worker: id, delivery, ms: entry.ms };
        } else {
          const name = task.id;
          await retryTransient(() => results.putBlob({ name }, bytes));
          const sha256 = createHash("sha256").update(bytes).digest("hex");
          outcome = {
            taskId: task.id,
            worker: id,
            delivery,
            resultObject: { name, size: bytes.length, sha256 },
            ms: entry.ms,
          };
        }
        const t3 = performance.now();
        log?.info("merged module", {
          ...fields,
          ms: Math.round(entry.ms),
          fetchMs: Math.round(t1 - t0),
          mergeWallMs: Math.round(t2 - t1),
          storeMs: Math.round(t3 - t2),
          fetchedBytes: ranges.fetchedBytes(),
        });
      } catch (err) {
        const failure = failureOf(err);
        if (failure === undefined && (isTransient(err) || err instanceof StoreUnavailableError)) {
          log?.warn("could not merge a module for now; the task goes back to the queue", {
            ...fields,
            error: err,
          });
          m.nak(1_000);
          return;
        }
        log?.warn("could not merge a module; reporting it to the leader", { ...fields, error: err });
        outcome = {
          taskId: task.id,
          worker: id,
          delivery,
          failure: failure ?? { kind: "failed", message: err instanceof Error ? err.message : String(err) },
        };
      } finally {
        clearInterval(working);
      }
      await retryTransient(() =>
        h.js.publish(task.replyTo, encodeOutcome(outcome, inline), { msgID: `${task.id}.${delivery}` }),
      );
      m.ack();
      finished++;
    };

    // Takes tasks only as slots free up; one held sends "working" from the start.
    let stopping = false;
    let active = 0;
    let wake: (() => void) | undefined;
    const freed = () => {
      wake?.();
      wake = undefined;
    };
    const pulling = (async () => {
      while (!stopping) {
        if (active >= slots) {
          await new Promise<void>((r) => {
            wake = r;
          });
          continue;
        }
        try {
          const batch = await consumer.fetch({ max_messages: slots - active, expires: 2_000 });
          for await (const m of batch) {
            active++;
            handle(m)
              .catch((err: unknown) => log?.error("a merge task failed unexpectedly", { error: err }))
              .finally(() => {
                active--;
                freed();
              });
          }
        } catch (err) {
          if (stopping) break;
          log?.warn("could not pull merge tasks; trying again", { error: err });
          await new Promise((r) => setTimeout(r, 500));
        }
      }
    })();

    const registration = await announceWorker(
      kv,
      { id, threads: slots, backend: pool.backend.name, host: hostname() },
      log,
    );
    const sweeper = setInterval(
      () => void sweepCache(used, ranges, options.cacheIdleMs ?? 10 * 60_000),
      60_000,
    );
    sweeper.unref();
    log?.info("merge worker attached", { worker: id, slots, backend: pool.backend.name });

    return {
      id,
      slots,
      done: () => finished,
      async close() {
        stopping = true;
        clearInterval(sweeper);
        await registration.stop();
        freed();
        await pulling;
        while (active > 0) await new Promise((r) => setTimeout(r, 50));
        await closeAll();
      },
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

/** Removes the copies of objects unused for `idleMs`. */
async function sweepCache(
  used: Map<string, { name: string; at: number }>,
  ranges: ObjectRanges,
  idleMs: number,
): Promise<void> {
  const before = Date.now() - idleMs;
  for (const [path, { name, at }] of used) {
    if (at >= before) continue;
    used.delete(path);
    ranges.forget(name);
    await rm(path, { force: true });
  }
}
