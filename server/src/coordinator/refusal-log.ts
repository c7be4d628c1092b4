/**
 * The updates intake refused, kept for the operator (the page lists them per
 * round; the JSON log has each too): who sent what for which round, when,
 * and why, by the error's reason. In memory, the latest
 * {@link REFUSALS_KEPT} per federation on the coordinator that refused them;
 * transfers cut short and uploads told to wait their turn are not refusals.
 */
import { ErrorReason } from "@tributary/protocol";
import { DomainError } from "../core/errors.ts";

/** How many refusals are kept per federation. */
export const REFUSALS_KEPT = 500;

/** One refused update. */
export interface Refusal {
  readonly federationId: string;
  readonly round: number;
  readonly clientId: string;
  readonly updateId: string;
  /** Epoch ms. */
  readonly at: number;
  /** The error's reason, e.g. `INVALID_TENSOR`, `STALE_ROUND`. */
  readonly reason: string;
  /** What the client was told. */
  readonly message: string;
}

/** Reasons that say the update itself was refused (not "wait" or "resend from here"). */
const REFUSED = new Set<ErrorReason>([
  ErrorReason.INVALID_TENSOR,
  ErrorReason.INVALID_FIELD,
  ErrorReason.MALFORMED_ADAPTER,
  ErrorReason.CONTENT_MISMATCH,
  ErrorReason.MALFORMED_MESSAGE,
  ErrorReason.STALE_ROUND,
  ErrorReason.NOT_IN_COHORT,
  ErrorReason.UPDATE_CONFLICT,
  ErrorReason.UPDATE_TOO_LARGE,
  ErrorReason.QUOTA_EXCEEDED,
  ErrorReason.STORAGE_FULL,
]);

/** The refusals of every federation. */
export interface RefusalLog {
  /** Keeps `err` as a refusal of `update` when it is one; ignores anything else. */
  note(
    update: {
      readonly federationId: string;
      readonly round: number;
      readonly clientId: string;
      readonly updateId: string;
    },
    err: unknown,
    at: number,
  ): void;
  /** The federation's refusals kept, oldest first. */
  list(federationId: string): readonly Refusal[];
}

/**
 * An empty log keeping the latest `kept` refusals per federation.
 *
 * @example
 * const log = createRefusalLog();
 * log.note({ federationId, round: 3, clientId, updateId }, err, Date.now());
 */
export function createRefusalLog(kept = REFUSALS_KEPT): RefusalLog {
  const byFederation = new Map<string, Refusal[]>();
  return {
    note(update, err, at) {
      if (!(err instanceof DomainError)) return;
      const reason = err.detail().reason;
      if (!REFUSED.has(reason)) return;
      const list = byFederation.get(update.federationId) ?? [];
      list.push({ ...update, at, reason: ErrorReason[reason], message: err.message });
      if (list.length > kept) list.splice(0, list.length - kept);
      byFederation.set(update.federationId, list);
    },
    list: (federationId) => [...(byFederation.get(federationId) ?? [])],
  };
}
