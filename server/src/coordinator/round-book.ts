/**
 * What a round scheduler knows of its federation, in memory: every round's
 * latest record, the updates accepted in each, the enrolled clients and those
 * connected now. Pure data, filled from the journal at start and kept by the
 * scheduler as it journals.
 */
import type { RoundRecord, UpdateRecord } from "../core/model.ts";
import { UnknownRoundError } from "./errors.ts";
import type { SchedulerSnapshot } from "./round-scheduler-types.ts";

/** Whether a round still takes updates or is being merged. */
export const isRunning = (r: RoundRecord | undefined): boolean =>
  r?.state === "open" || r?.state === "merging";

/** A federation's rounds, updates and clients (see the module comment). */
export interface RoundBook {
  /** The latest round, whatever its state; `undefined` before the first. */
  current(): RoundRecord | undefined;
  round(n: number): RoundRecord | undefined;
  /** Every round so far, oldest first. */
  all(): RoundRecord[];
  /** Updates accepted for round `n`, in acceptance order. */
  accepted(n: number): readonly UpdateRecord[];
  /** Cohort members of round `n` that have not submitted (throws `UnknownRoundError`). */
  stragglers(n: number): string[];
  /** Enrolled clients connected now, sorted. */
  connected(): string[];
  readonly enrolled: Set<string>;
  readonly online: Set<string>;
  /** Records a round's new state (journaled by the caller). */
  setRound(r: RoundRecord): void;
  /** Records an accepted update (journaled by the caller). */
  addUpdate(u: UpdateRecord): void;
}

/** A book over `initial`, for federation `federationId`. */
export function createRoundBook(federationId: string, initial: SchedulerSnapshot = {}): RoundBook {
  const rounds = new Map<number, RoundRecord>();
  for (const r of initial.rounds ?? []) rounds.set(r.number, r);
  let latest = Math.max(0, ...rounds.keys());
  const updates = new Map<number, UpdateRecord[]>();
  for (const u of initial.updates ?? []) updates.set(u.round, [...(updates.get(u.round) ?? []), u]);
  const enrolled = new Set(initial.enrolled ?? []);
  const online = new Set([...(initial.connected ?? [])].filter((id) => enrolled.has(id)));
  const accepted = (n: number): readonly UpdateRecord[] => updates.get(n) ?? [];
  return {
    current: () => rounds.get(latest),
    round: (n) => rounds.get(n),
    all: () => [...rounds.values()].sort((a, b) => a.number - b.number),
    accepted,
    stragglers(n) {
      const r = rounds.get(n);
      if (r === undefined) throw new UnknownRoundError(federationId, n);
      const got = new Set(accepted(n).map((u) => u.clientId));
      return r.cohort.filter((id) => !got.has(id));
    },
    connected: () => [...online].sort(),
    enrolled,
    online,
    setRound(r) {
      rounds.set(r.number, r);
      latest = Math.max(latest, r.number);
    },
    addUpdate(u) {
      updates.set(u.round, [...accepted(u.round), u]);
    },
  };
}
