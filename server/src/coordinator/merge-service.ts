/**
 * Merging closed rounds: it reacts to `round-closed` (and, at start, to
 * rounds the journal left MERGING), merges the round's accepted updates on the
 * merge runner, and reports the result to the scheduler, which journals
 * `round-merged` (or `round-failed`). One merge per round at a time; a merge
 * redone after a crash that had already stored the adapter keeps that adapter.
 */
import type { Clock } from "../core/clock.ts";
import type { Log } from "../core/log.ts";
import type { MergeRunner } from "../core/merge-runner.ts";
import type { Federation, RoundRecord, RoundResult, UpdateRecord } from "../core/model.ts";
import { isStorageFull } from "../core/storage-faults.ts";
import type { CoordinatorStore, JournalEvent } from "../core/store.ts";
import type { Telemetry } from "../core/telemetry.ts";
import { readResultMetadata } from "./result-metadata.ts";
import { mergeRound } from "./round-merge.ts";

/** What the merge service needs. */
export interface MergeServiceOptions {
  readonly store: CoordinatorStore;
  readonly pool: MergeRunner;
  readonly clock: Clock;
  readonly log: Log;
  readonly telemetry: Telemetry;
  readonly federation: (id: string) => Federation;
  /** A round's accepted updates, in acceptance order. */
  readonly updates: (federationId: string, round: number) => readonly UpdateRecord[];
  /** The merge succeeded: journal `round-merged`. */
  readonly finished: (round: RoundRecord, result: RoundResult) => Promise<unknown>;
  /** The merge failed: journal `round-failed`. */
  readonly failed: (round: RoundRecord, error: unknown) => Promise<unknown>;
  /** Whether the round is still MERGING (an aborted round's merge stops retrying). */
  readonly stillMerging: (round: RoundRecord) => boolean;
}

/** The running merge service. */
export interface MergeService {
  /** Reacts to a journaled event (`round-closed` starts a merge). */
  onEvent(event: JournalEvent): void;
  /** Merges a round the journal left MERGING (at start). */
  resume(round: RoundRecord): void;
  /** Waits for the merges in flight; later events start none. */
  close(): Promise<void>;
}

/** A merge service over `opts` (see the module comment). */
export function createMergeService(opts: MergeServiceOptions): MergeService {
  const { store, pool, clock, log, telemetry } = opts;
  const running = new Map<string, Promise<void>>();
  let closed = false;

  const merge = async (
    federation: Federation,
    round: RoundRecord,
    traced: ReturnType<Telemetry["merge"]>,
  ) => {
    const updates = opts.updates(federation.id, round.number);
    log.info("merging round", { federation: federation.id, round: round.number, updates: updates.length });
    const t0 = clock.now();
    // A crash after the result was stored but before `round-merged` was
    // journaled: keep that result (the store refuses a second one).
    const previous = await store.adapterForRound(federation.id, round.number);
    const result =
      previous !== undefined
        ? await readResultMetadata(federation, round, previous)
        : (
            await mergeRound({
              federation,
              round,
              updates,
              store,
              pool,
              now: () => clock.now(),
              onModule: traced.module,
              keepTrying: () => !closed && opts.stillMerging(round),
              onEvent: (e) => {
                const where = { federation: federation.id, round: round.number };
                if (e.kind === "excluded") {
                  traced.excluded(e.clientId, e.error);
                  log.warn("update left out of the merge", {
                    ...where,
                    client: e.clientId,
                    reason: e.reason,
                  });
                } else {
                  traced.faultRetried(e.error);
                  const full = isStorageFull(e.error);
                  // A full disk is retried until space returns: the alert field says so.
                  log.error("merge hit a transient fault; retrying", {
                    ...where,
                    ...(full ? { alert: "storage_full" } : {}),
                    error: e.error,
                    retryInMs: e.retryInMs,
                  });
                }
              },
            })
          ).result;
    traced.end(result.weights);
    log.info("round merged", {
      federation: federation.id,
      round: round.number,
      contentHash: result.contentHash,
      ms: clock.now() - t0,
    });
    await opts.finished(round, result);
  };

  const start = (round: RoundRecord): void => {
    const key = `${round.federationId}\u0000${round.number}`;
    if (closed || running.has(key)) return;
    const federation = opts.federation(round.federationId);
    const traced = telemetry.merge({
      federationId: federation.id,
      round: round.number,
      method: federation.merge.method,
      clients: opts.updates(federation.id, round.number).length,
    });
    const run = traced
      .run(() => merge(federation, round, traced))
      .catch(async (err: unknown) => {
        traced.fail(err);
        log.error("merge failed", { federation: federation.id, round: round.number, error: err });
        if (!closed) await opts.failed(round, err).catch(() => {});
      })
      .finally(() => running.delete(key));
    running.set(key, run);
  };

  return {
    onEvent(event) {
      if (event.type === "round-closed") start(event.round);
    },
    resume: start,
    async close() {
      closed = true;
      await Promise.allSettled([...running.values()]);
    },
  };
}
