/**
 * The JetStream pieces merge workers share with the leaders: a work-queue
 * stream of module-merge tasks with one durable pull consumer that every
 * worker pulls from (a task goes to one worker; one not acknowledged within
 * {@link TASK_ACK_WAIT_MS} — its worker died — is delivered again), a stream
 * of outcomes each leader reads its own subject of, an object bucket for
 * results too large for an outcome message (JetStream drops them after
 * {@link RESULT_TTL_MS}, so a leader that dies before reading one leaves
 * nothing behind for long), and the KV bucket where workers say they are
 * alive. A coordinator creates them, with its replicas, when it starts on the
 * JetStream store; workers only attach.
 */
import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
  RetentionPolicy,
  StorageType,
} from "@nats-io/jetstream";
import { type ObjectStore, Objm } from "@nats-io/obj";
import type { MergeWorkerInfo } from "../core/merge-runner.ts";
import { ensureStream } from "../store-jetstream/setup.ts";

/** Names of the merge queue's streams, consumer and bucket. */
export const MERGE_QUEUE = {
  taskStream: "TRIBUTARY_MERGE_TASKS",
  taskSubject: "tributary.merge.task",
  consumer: "tributary-workers",
  outcomeStream: "TRIBUTARY_MERGE_OUTCOMES",
  outcomePrefix: "tributary.merge.outcome",
  workerBucket: "tributary-workers",
  /** The object bucket of results too large for an outcome message, named by task id. */
  resultBucket: "tributary-merge-results",
} as const;

/**
 * How long a delivered task may go without its worker's word (an ack, or a
 * "working" signal, sent every {@link WORKING_EVERY_MS}) before it is
 * delivered to another worker.
 */
export const TASK_ACK_WAIT_MS = 10_000;

/** How often a worker tells JetStream it is still on a task. */
export const WORKING_EVERY_MS = 2_000;

/** How long a worker's entry in the bucket counts as alive unrefreshed. */
export const WORKER_TTL_MS = 10_000;

/** Milliseconds as JetStream's nanoseconds. */
const nanos = (ms: number) => ms * 1_000_000;

/** How long outcomes, and results in the result bucket, are kept (a leader reads its own within seconds). */
export const RESULT_TTL_MS = 15 * 60_000;

/**
 * Creates (or adopts) the task and outcome streams and the result bucket
 * with `replicas`, then the workers' consumer (created last: a worker waits
 * for it, so everything else exists by then); returns the result bucket.
 *
 * @example
 * const results = await ensureMergeQueue(h.bulk.js, h.jsm, 3);
 */
export async function ensureMergeQueue(
  js: JetStreamClient,
  jsm: JetStreamManager,
  replicas: number,
): Promise<ObjectStore> {
  await ensureStream(jsm, {
    name: MERGE_QUEUE.taskStream,
    subjects: [MERGE_QUEUE.taskSubject],
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
    num_replicas: replicas,
  });
  await ensureStream(jsm, {
    name: MERGE_QUEUE.outcomeStream,
    subjects: [`${MERGE_QUEUE.outcomePrefix}.>`],
    retention: RetentionPolicy.Limits,
    max_age: nanos(RESULT_TTL_MS),
    storage: StorageType.File,
    num_replicas: replicas,
  });
  const results = await new Objm(js).create(MERGE_QUEUE.resultBucket, {
    storage: StorageType.File,
    replicas,
    ttl: nanos(RESULT_TTL_MS),
  });
  try {
    await jsm.consumers.info(MERGE_QUEUE.taskStream, MERGE_QUEUE.consumer);
  } catch (err) {
    if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.ConsumerNotFound)) throw err;
    await jsm.consumers.add(MERGE_QUEUE.taskStream, {
      durable_name: MERGE_QUEUE.consumer,
      ack_policy: AckPolicy.Explicit,
      ack_wait: nanos(TASK_ACK_WAIT_MS),
      deliver_policy: DeliverPolicy.All,
      max_ack_pending: 10_000,
    });
  }
  return results;
}

/** What a worker writes about itself in the bucket. */
export type WorkerEntry = MergeWorkerInfo;

/** A worker's key in the bucket (ids hex-encoded: keys take few characters). */
export function workerKey(id: string): string {
  return `w.${Buffer.from(id, "utf8").toString("hex")}`;
}
