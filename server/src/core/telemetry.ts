/**
 * The telemetry port: what the round logic reports (rounds changing state,
 * updates and their steps, merges module by module, publishes, durable
 * writes, connected clients), in its own words. `telemetry/` implements it on
 * OpenTelemetry; `noopTelemetry` records nothing.
 */
import type { ModuleCallback } from "./merge-runner.ts";
import type { RoundRecord } from "./model.ts";

/** A round as the coordinator broadcasts it. */
export interface RoundView {
  readonly round: RoundRecord;
  readonly method: string;
  readonly accepted: number;
  /** Cohort members without an accepted update (counted when the round closes). */
  readonly stragglers?: number;
}

/** The steps of receiving an update, in order; `upload` is also the upload-duration metric. */
export type UpdateStep = "validate" | "upload" | "store" | "validate_content" | "accept";

/** One update being received. */
export interface UpdateTrace {
  /** Runs `fn` with the update span active (log lines get its trace id). */
  run<T>(fn: () => Promise<T>): Promise<T>;
  /** Runs one step as a child span. */
  step<T>(name: UpdateStep, fn: () => T | Promise<T>): Promise<T>;
  /** Counts bytes received. */
  received(bytes: number): void;
  /** The update was acknowledged (`duplicate`: it had been already). */
  end(result: "accepted" | "duplicate"): void;
  /** The update was refused or interrupted. */
  fail(err: unknown): void;
}

/** One round being merged. */
export interface MergeTrace {
  /** Runs `fn` with the merge span active. */
  run<T>(fn: () => Promise<T>): Promise<T>;
  /** Pass to the merge pipeline: one child span per merged module. */
  readonly module: ModuleCallback;
  /** A client's update was left out of the merge because of `err`. */
  excluded(clientId: string, err: unknown): void;
  /** The merge met a transient I/O fault and will retry. */
  faultRetried(err: unknown): void;
  /** The merge was stored; `weights` are the per-client mean merge weights. */
  end(weights: readonly number[]): void;
  fail(err: unknown): void;
}

/** The coordinator's telemetry (see the module comment). */
export interface Telemetry {
  /** A round changed (every broadcast): opens its span at OPEN, records quorum and stragglers, ends it at PUBLISHED/FAILED/ABORTED. */
  roundChanged(view: RoundView): void;
  /** A round found OPEN or MERGING at start-up: its span is reopened (`tributary.resumed`). */
  roundResumed(round: RoundRecord, method: string): void;
  update(key: { federationId: string; round: number; clientId: string; updateId: string }): UpdateTrace;
  merge(key: { federationId: string; round: number; method: string; clients: number }): MergeTrace;
  /** Times publishing round `round` on NATS (a child span of the round). */
  publish<T>(federationId: string, round: number, fn: () => Promise<T>): Promise<T>;
  /** Times a durable store write (fsync included); a span when inside a traced operation. */
  storeWrite<T>(operation: "journal" | "upload" | "adapter", fn: () => Promise<T>): Promise<T>;
  /** Reports connected clients per federation on each collection; returns the unregistration. */
  observeActiveClients(read: () => Iterable<readonly [federationId: string, connected: number]>): () => void;
  /** Reports ε spent per federation with central DP on each collection; returns the unregistration. */
  observePrivacy(read: () => Iterable<readonly [federationId: string, epsilon: number]>): () => void;
  /** Ends the spans of rounds still running (marked `tributary.interrupted`). */
  close(): void;
}

/** Telemetry that records nothing (the default of library use and unit tests). */
export const noopTelemetry: Telemetry = {
  roundChanged() {},
  roundResumed() {},
  update: () => ({
    run: (fn) => fn(),
    step: async (_name, fn) => fn(),
    received() {},
    end() {},
    fail() {},
  }),
  merge: () => ({
    run: (fn) => fn(),
    module() {},
    excluded() {},
    faultRetried() {},
    end() {},
    fail() {},
  }),
  publish: (_federationId, _round, fn) => fn(),
  storeWrite: (_operation, fn) => fn(),
  observeActiveClients: () => () => {},
  observePrivacy: () => () => {},
  close() {},
};
