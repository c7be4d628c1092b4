/**
 * The merge runner of a coordinator on the JetStream store: while merge
 * workers are attached, every module whose inputs are stored objects goes to
 * them as a task on the work queue (`queue.ts`), and the leader only
 * assembles the results; with none attached — or when the last one leaves
 * while tasks are out — the leader merges in-process on its own pool, as
 * without workers. A task's outcome is read from the leader's own subject of
 * the outcome stream; one for a task no longer awaited (a redelivered
 * task's duplicate, a task taken back) is dropped, its result object deleted.
 * A result object a dead leader never read expires with the result bucket's
 * TTL.
 */
import { randomUUID } from "node:crypto";
import { DeliverPolicy } from "@nats-io/jetstream";
import type { Log } from "../core/log.ts";
import type { MergeRunner, MergeWorkerInfo, ModuleFiles, TimedResult } from "../core/merge-runner.ts";
import type { MergeOptions } from "../merge/options.ts";
import type { ModuleMergeResult } from "../merge/types.ts";
import { mergeModuleFiles } from "../pipeline/module-files.ts";
import { openKvBucket } from "../store-jetstream/kv-bucket.ts";
import { DEFAULT_JETSTREAM_NAMES } from "../store-jetstream/names.ts";
import { readObject } from "../store-jetstream/object-cache.ts";
import { openJetStream } from "../store-jetstream/setup.ts";
import { retryTransient, retryUntilReady } from "../store-jetstream/transient.ts";
import { ensureMergeQueue, MERGE_QUEUE, WORKER_TTL_MS } from "./queue.ts";
import {
  decodeModuleResult,
  decodeOutcome,
  encodeJson,
  type ObjectRef,
  type TaskOutcome,
  taskError,
  taskFor,
} from "./task-codec.ts";
import { watchWorkers } from "./worker-registry.ts";

/** Options of {@link startRemoteMergeRunner}. */
export interface RemoteMergeRunnerOptions {
  /** The JetStream cluster of the store. */
  readonly servers: readonly string[];
  /** Replicas of the queue's streams and the workers' bucket. */
  readonly replicas: number;
  readonly coordinatorId: string;
  /** The in-process pool, for dense tensors and whenever no worker is attached. */
  readonly local: MergeRunner;
  /** The stored object a local file is a verified copy of (the store's cache), if it is one. */
  readonly locate: (path: string) => ObjectRef | undefined;
  readonly log?: Log;
  /** How often outstanding tasks are checked against the workers alive (default 1 s). */
  readonly checkEveryMs?: number;
}

/** A merge runner that hands modules to merge workers; `workers()` lists those alive. */
export interface RemoteMergeRunner extends MergeRunner {
  workers(): readonly MergeWorkerInfo[];
}

/** What a worker sent back: the outcome, and the result when it came inline. */
interface Received {
  readonly outcome: TaskOutcome;
  readonly inline?: Uint8Array;
}

interface Outstanding {
  /** The task's stream sequence, once its publish is acknowledged (0 before). */
  seq: number;
  settle(received: Received | "take-back"): void;
}

/**
 * Creates the merge queue (streams, consumer, workers' bucket) with its
 * replicas and starts reading this runner's outcomes.
 *
 * @example
 * const runner = await startRemoteMergeRunner({ servers, replicas: 3, coordinatorId: "a", local: pool, locate: store.objectAt });
 */
export async function startRemoteMergeRunner(options: RemoteMergeRunnerOptions): Promise<RemoteMergeRunner> {
  const { local, log } = options;
  const names = DEFAULT_JETSTREAM_NAMES;
  const h = await openJetStream(names, {
    servers: options.servers,
    replicas: options.replicas,
    name: `tributary-merge-${options.coordinatorId}`,
  });
  const closers: (() => Promise<void> | void)[] = [() => h.close()];
  const close = async () => {
    for (const c of closers.reverse()) await c();
  };
  try {
    const results = await retryUntilReady(() => ensureMergeQueue(h.bulk.js, h.jsm, options.replicas), {
      servers: options.servers,
      what: "the merge task queue",
    });
    const { nc: kvNc, kv } = await openKvBucket({
      servers: options.servers,
      name: `tributary-workers-${options.coordinatorId}`,
      bucket: MERGE_QUEUE.workerBucket,
      ttlMs: WORKER_TTL_MS,
      replicas: options.replicas,
    });
    closers.push(() => kvNc.close());
    const registry = await watchWorkers(kv, log);
    closers.push(() => registry.close());

    const replyTo = `${MERGE_QUEUE.outcomePrefix}.${Buffer.from(options.coordinatorId).toString("hex")}-${randomUUID().slice(0, 8)}`;
    const outstanding = new Map<string, Outstanding>();
    const consumer = await h.js.consumers.get(MERGE_QUEUE.outcomeStream, {
      filter_subjects: replyTo,
      deliver_policy: DeliverPolicy.New,
    });
    const messages = await consumer.consume();
    closers.push(() => messages.stop());
    void (async () => {
      for await (const m of messages) {
        const { outcome, inline } = decodeOutcome(m.data);
        const task = outstanding.get(outcome.taskId);
        if (task !== undefined) {
          outstanding.delete(outcome.taskId);
          task.settle({ outcome, ...(inline !== undefined ? { inline } : {}) });
        } else if (outcome.resultObject !== undefined) {
          // A duplicate (the task was redelivered) or a task taken back.
          results.delete(outcome.resultObject.name).catch(() => undefined);
        }
      }
    })().catch((err: unknown) => log?.warn("reading merge outcomes ended", { error: err }));

    // Tasks are taken back when no worker is left to do them.
    const watchdog = setInterval(() => {
      if (outstanding.size === 0 || registry.alive().length > 0) return;
      log?.warn("no merge worker is attached any more; merging the modules out in-process", {
        modules: outstanding.size,
      });
      for (const [id, task] of outstanding) {
        outstanding.delete(id);
        task.settle("take-back");
        if (task.seq > 0) {
          h.jsm.streams.deleteMessage(MERGE_QUEUE.taskStream, task.seq, false).catch(() => undefined);
        }
      }
    }, options.checkEveryMs ?? 1_000);
    watchdog.unref();
    closers.push(() => clearInterval(watchdog));

    const dispatch = async (
      files: ModuleFiles,
      opts: MergeOptions,
    ): Promise<TimedResult<ModuleMergeResult> | undefined> => {
      const task = taskFor(randomUUID(), replyTo, files, opts, options.locate);
      if (task === undefined) return undefined;
      const received = await new Promise<Received | "take-back">((resolve, reject) => {
        // Awaited before it is published: its outcome may come before the publish's ack.
        const entry: Outstanding = { seq: 0, settle: resolve };
        outstanding.set(task.id, entry);
        retryTransient(() => h.js.publish(MERGE_QUEUE.taskSubject, encodeJson(task), { msgID: task.id }))
          .then((ack) => {
            entry.seq = ack.seq;
          })
          .catch((err: unknown) => {
            outstanding.delete(task.id);
            reject(err);
          });
      });
      if (received === "take-back") return undefined;
      const { outcome, inline } = received;
      if (outcome.failure !== undefined) throw taskError(outcome.failure, outcome.worker);
      if (inline !== undefined) return { result: decodeModuleResult(inline), ms: outcome.ms ?? 0 };
      const ref = outcome.resultObject;
      if (ref === undefined)
        throw new Error(`merge worker ${outcome.worker} reported no result for ${files.name}`);
      const bytes = await readObject(h, MERGE_QUEUE.resultBucket, ref.name, results);
      results.delete(ref.name).catch(() => undefined);
      if (bytes === null || bytes.length !== ref.size) {
        throw new Error(
          `the result of ${files.name} from merge worker ${outcome.worker} is missing or cut short`,
        );
      }
      return { result: decodeModuleResult(bytes), ms: outcome.ms ?? 0 };
    };

    let lastMode: string | undefined;
    const mode = (now: string, fields: Record<string, unknown>) => {
      if (now !== lastMode) log?.info(now, fields);
      lastMode = now;
    };

    return {
      backend: local.backend,
      get threads() {
        const alive = registry.alive();
        return alive.length === 0 ? local.threads : alive.reduce((sum, w) => sum + w.threads, 0);
      },
      readsFiles: true,
      readsAnyFiles: true,
      workers: () => registry.alive(),
      mergeModule: (group, opts, submit) => local.mergeModule(group, opts, submit),
      mergeDense: (group, opts) => local.mergeDense(group, opts),
      async mergeFiles(files, opts) {
        const alive = registry.alive();
        if (alive.length > 0) {
          mode("merging on merge workers", { workers: alive.map((w) => w.id) });
          const remote = await dispatch(files, opts);
          if (remote !== undefined) return remote;
        } else {
          mode("no merge worker attached; merging in-process", {});
        }
        return mergeModuleFiles(local, files, opts);
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
