/**
 * What a client is waiting on, reported every few seconds while `nextRound`
 * or `waitForResult` waits (`WaitOptions.onWaiting`): the latest round, its
 * updates against the quorum, how many of its cohort have yet to submit, the
 * time left to its deadline, and — when no round is open — why not, as the
 * coordinator says it (`HeartbeatResponse.waiting_reason`).
 */
import type { RoundInfo } from "./round-info.ts";

/** One report of {@link WaitOptions.onWaiting}. */
export interface Waiting {
  /** What the call waits for: a round this client can submit to, or a round's merged adapter. */
  readonly for: "round" | "result";
  /** The round a result is awaited for (`for: "result"`). */
  readonly awaitedRound?: number;
  /** The latest round, if one was ever started. */
  readonly round?: RoundInfo;
  /** Accepted updates that close a round (the federation's quorum). */
  readonly quorum: number;
  /** Clients of the open round's cohort that have not submitted yet. */
  readonly awaiting?: number;
  /** Milliseconds left to the open round's deadline. */
  readonly deadlineInMs?: number;
  /** Why no round is open, when none is (e.g. "1 of 2 clients connected; a round opens when 2 are"). */
  readonly reason?: string;
}

/** The fields of a heartbeat answer a report is made of. */
export interface WaitingSnapshot {
  readonly round?: RoundInfo;
  readonly quorum: number;
  readonly reason: string;
}

/**
 * A report from the coordinator's answer, at time `now` (ms).
 *
 * @example
 * waitingOf("round", undefined, { quorum: 2, reason: "1 of 2 clients connected; …" }, Date.now());
 */
export function waitingOf(
  what: "round" | "result",
  awaitedRound: number | undefined,
  snap: WaitingSnapshot,
  now: number,
): Waiting {
  const r = snap.round;
  const open = r?.state === "open";
  return {
    for: what,
    ...(awaitedRound !== undefined ? { awaitedRound } : {}),
    ...(r !== undefined ? { round: r } : {}),
    quorum: snap.quorum,
    ...(open ? { awaiting: Math.max(0, r.cohort.length - r.acceptedUpdates) } : {}),
    ...(open && r.deadline !== undefined ? { deadlineInMs: Math.max(0, r.deadline.getTime() - now) } : {}),
    ...(snap.reason !== "" ? { reason: snap.reason } : {}),
  };
}

function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}

/**
 * One line for a person: what is awaited and why it is not there yet.
 *
 * @example
 * describeWaiting(w); // "waiting for a round: round 3 is open: 1/2 updates (quorum 2), 1 of 2 clients still to submit, 4m12s to the deadline"
 */
export function describeWaiting(w: Waiting): string {
  const head =
    w.for === "round" ? "waiting for a round" : `waiting for round ${w.awaitedRound}'s merged adapter`;
  const r = w.round;
  if (r === undefined || r.state !== "open") {
    if (r?.state === "merging") return `${head}: round ${r.number} is merging ${r.acceptedUpdates} update(s)`;
    if (w.reason !== undefined) return `${head}: no round open: ${w.reason}`;
    return `${head}: no round open`;
  }
  const parts = [`${r.acceptedUpdates}/${w.quorum} updates (quorum ${w.quorum})`];
  if (w.awaiting !== undefined) parts.push(`${w.awaiting} of ${r.cohort.length} clients still to submit`);
  if (w.deadlineInMs !== undefined) parts.push(`${duration(w.deadlineInMs)} to the deadline`);
  return `${head}: round ${r.number} is open: ${parts.join(", ")}`;
}
