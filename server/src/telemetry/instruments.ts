/**
 * The coordinator's metric instruments: names, units, bucket boundaries.
 * Attributes stay bounded — federation id, method, outcome, result, reason
 * (an error class name), solver, store operation — never a round number or
 * a client id, which grow without limit (those go on spans).
 */
import type { Counter, Histogram, Meter, ObservableGauge } from "@opentelemetry/api";

/** Every instrument `createTelemetry` records to. */
export interface Instruments {
  /** `{federation, outcome}`: rounds that ended, by outcome (published, failed, aborted). */
  readonly rounds: Counter;
  /** `{federation, outcome}`: open → end of the round. */
  readonly roundDuration: Histogram;
  /** `{federation, result, reason}`: updates by result (accepted, duplicate, rejected) and rejection reason. */
  readonly updates: Counter;
  /** `{federation}`: update bytes received, accepted or not. */
  readonly updateBytes: Counter;
  /** `{federation}`: time to stream one update's bytes into the store. */
  readonly uploadDuration: Histogram;
  /** `{federation}`: round open → quorum reached. */
  readonly timeToQuorum: Histogram;
  /** `{federation}`: cohort members without an accepted update when the round closed. */
  readonly stragglers: Histogram;
  /** `{federation, method, outcome}`: merging one round. */
  readonly mergeDuration: Histogram;
  /** `{federation, method, solver}`: iterations of an iterative merge solver (FroM ALS, LoRE) per module. */
  readonly alsIterations: Histogram;
  /** `{federation, method}`: each client's mean normalised merge weight in a round (FroM: `‖Θ_i‖^k`). */
  readonly mergeWeight: Histogram;
  /** `{federation, method, reason}`: clients' updates a round merge left out, by error class. */
  readonly mergeExclusions: Counter;
  /** `{federation, reason}`: transient I/O faults (disk full, EIO) a round merge retried, by errno. */
  readonly mergeFaultRetries: Counter;
  /** `{federation, outcome}`: one publish of a merged round on NATS (object store + announcement). */
  readonly natsPublish: Histogram;
  /** `{operation}`: a durable store write, fsync included (journal line, upload commit, adapter). */
  readonly storeFsync: Histogram;
  /** `{federation}`: enrolled clients connected now. */
  readonly activeClients: ObservableGauge;
  /** `{federation}`: ε its merged rounds spent (central DP only). */
  readonly privacyEpsilon: ObservableGauge;
}

const SECONDS_LONG = [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400];
const SECONDS_SHORT = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];
const SECONDS_FSYNC = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
const WEIGHTS = [0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.8, 1];
const COUNTS = [0, 1, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1000];

/** Creates the instruments on `meter` (a no-op meter gives no-op instruments). */
export function createInstruments(meter: Meter): Instruments {
  const seconds = (name: string, description: string, buckets: number[]) =>
    meter.createHistogram(name, { description, unit: "s", advice: { explicitBucketBoundaries: buckets } });
  return {
    rounds: meter.createCounter("tributary_rounds_total", {
      description: "Rounds that ended, by outcome (published, failed, aborted)",
      unit: "{round}",
    }),
    roundDuration: seconds("tributary_round_duration_seconds", "Round open to its end", SECONDS_LONG),
    updates: meter.createCounter("tributary_updates_total", {
      description: "Updates received, by result (accepted, duplicate, rejected) and rejection reason",
      unit: "{update}",
    }),
    updateBytes: meter.createCounter("tributary_update_bytes_total", {
      description: "Update bytes received, accepted or not",
      unit: "By",
    }),
    uploadDuration: seconds(
      "tributary_upload_duration_seconds",
      "Streaming one update's bytes into the store",
      SECONDS_SHORT,
    ),
    timeToQuorum: seconds("tributary_time_to_quorum_seconds", "Round open to quorum", SECONDS_LONG),
    stragglers: meter.createHistogram("tributary_stragglers", {
      description: "Cohort members without an accepted update when a round closed",
      unit: "{client}",
      advice: { explicitBucketBoundaries: COUNTS },
    }),
    mergeDuration: seconds("tributary_merge_duration_seconds", "Merging one round", SECONDS_SHORT),
    alsIterations: meter.createHistogram("tributary_als_iterations", {
      description: "Iterations of an iterative merge solver (FroM ALS, LoRE) on one module",
      unit: "{iteration}",
      advice: { explicitBucketBoundaries: COUNTS.slice(1) },
    }),
    mergeExclusions: meter.createCounter("tributary_merge_exclusions_total", {
      description: "Clients' updates a round merge left out, by error class",
      unit: "{update}",
    }),
    mergeFaultRetries: meter.createCounter("tributary_merge_fault_retries_total", {
      description: "Transient I/O faults (disk full, I/O error) a round merge retried, by errno",
      unit: "{retry}",
    }),
    mergeWeight: meter.createHistogram("tributary_merge_weight", {
      description: "Each client's mean normalised merge weight in a round",
      unit: "1",
      advice: { explicitBucketBoundaries: WEIGHTS },
    }),
    natsPublish: seconds(
      "tributary_nats_publish_duration_seconds",
      "Publishing a merged round on NATS (object store and announcement)",
      SECONDS_SHORT,
    ),
    storeFsync: seconds(
      "tributary_store_fsync_duration_seconds",
      "A durable store write, fsync included (journal line, upload commit, merged adapter)",
      SECONDS_FSYNC,
    ),
    activeClients: meter.createObservableGauge("tributary_active_clients", {
      description: "Enrolled clients connected now",
      unit: "{client}",
    }),
    privacyEpsilon: meter.createObservableGauge("tributary_privacy_epsilon", {
      description: "Epsilon a federation with central DP has spent, at its delta (merged rounds)",
      unit: "1",
    }),
  };
}
