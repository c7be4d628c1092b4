/**
 * Validation of a client's update at the boundary, first step:
 * `validateUpdate` checks the upload header before any byte is stored (ids,
 * round, cohort, idempotency, size, config, base model). The staged bytes
 * are checked tensor by tensor before the update is accepted
 * (`update-stream-validator.ts`: format, NaN/Inf, module set, dimensions,
 * rank, dtype). Nothing here does I/O.
 */

import { updateHeaderProblem } from "@tributary/protocol";
import type { Federation, RoundRecord, UpdateRecord } from "../core/model.ts";
import { parseUpdateConfig } from "./adapter-schema.ts";
import {
  InvalidUpdateError,
  NotInCohortError,
  StaleRoundError,
  UpdateConflictError,
  UpdateTooLargeError,
} from "./errors.ts";

/**
 * The header of an upload, as the RPC edge decodes it: everything of the
 * update but its bytes. It becomes the `UpdateRecord` once the bytes are
 * stored and checked (`sha256` lower-case hex, one name for the hash).
 */
export interface SubmitHeader
  extends Pick<
    UpdateRecord,
    "federationId" | "round" | "clientId" | "updateId" | "samples" | "metrics" | "sha256" | "configJson"
  > {
  /** Size of the complete safetensors bytes (the record's `size` once stored). */
  readonly totalSize: number;
  /** 0 for a new upload; the durable byte count to resume one. */
  readonly resumeOffset: number;
}

/** What `validateUpdate` needs. */
export interface UpdateRequest {
  readonly federation: Federation;
  /** The caller's client id (from its token). */
  readonly clientId: string;
  readonly header: SubmitHeader;
  /** The federation's latest round, whatever its state; `undefined` before the first. */
  readonly currentRound: RoundRecord | undefined;
  /** Updates accepted for the header's round (others are ignored). */
  readonly accepted: readonly UpdateRecord[];
}

/** `new`: store and validate the bytes. `duplicate`: already accepted; answer with `existing`'s ack. */
export type UpdateDecision =
  | { readonly kind: "new" }
  | { readonly kind: "duplicate"; readonly existing: UpdateRecord };

/** One client's claim on a round, as `admitToRound` checks it: the identifying part of an update. */
export type RoundClaim = Pick<UpdateRecord, "federationId" | "clientId" | "round" | "updateId" | "sha256">;

/**
 * Whether a client may add an update to a round: the same `updateId` already
 * accepted from it is a duplicate (whatever the round's state, so a retry
 * after a lost ack gets its ack); otherwise the round must be the open one,
 * the client in its cohort, and without another update from it. Throws
 * `UpdateConflictError`, `StaleRoundError` or `NotInCohortError`.
 *
 * @example
 * const decision = admitToRound(claim, scheduler.current(), scheduler.accepted(claim.round));
 */
export function admitToRound(
  claim: RoundClaim,
  current: RoundRecord | undefined,
  accepted: readonly UpdateRecord[],
): UpdateDecision {
  const mine = accepted.filter((u) => u.round === claim.round && u.clientId === claim.clientId);
  const same = mine.find((u) => u.updateId === claim.updateId);
  if (same !== undefined) {
    if (same.sha256.toLowerCase() !== claim.sha256.toLowerCase()) {
      throw new UpdateConflictError(
        claim,
        `client "${claim.clientId}" reused update id "${claim.updateId}" in round ${claim.round} for different content (sha256 ${claim.sha256.toLowerCase()}, accepted ${same.sha256})`,
        same.updateId,
        { plain: true },
      );
    }
    return { kind: "duplicate", existing: same };
  }
  if (current === undefined || current.number !== claim.round || current.state !== "open") {
    throw new StaleRoundError(claim.federationId, claim.round, current);
  }
  // An empty cohort (buffered rounds) admits every enrolled client.
  if (current.cohort.length > 0 && !current.cohort.includes(claim.clientId)) {
    throw new NotInCohortError(claim.federationId, claim.clientId, claim.round);
  }
  if (mine.length > 0) {
    throw new UpdateConflictError(
      claim,
      `client "${claim.clientId}" already submitted update "${mine[0].updateId}" for round ${claim.round}; update "${claim.updateId}" is refused (one update per client per round)`,
      mine[0].updateId,
      { plain: true },
    );
  }
  return { kind: "new" };
}

/** Checks the header's own fields; throws `InvalidUpdateError` naming the field. */
function checkHeaderFields(clientId: string, h: SubmitHeader): void {
  const check = (ok: boolean, field: string, detail: string): void => {
    if (!ok) throw new InvalidUpdateError(clientId, detail, { field });
  };
  // The protocol's limits (ids, content hash, config size, metrics), as the edge checks them first.
  const bad = updateHeaderProblem({ ...h, contentHash: h.sha256, adapterConfigJson: h.configJson });
  if (bad !== undefined) check(false, bad.field, bad.problem);
  check(Number.isSafeInteger(h.round) && h.round >= 1, "round", `round must be ≥ 1, got ${h.round}`);
  check(
    Number.isSafeInteger(h.samples) && h.samples >= 0,
    "sample_count",
    `sample_count must be an integer ≥ 0, got ${h.samples}`,
  );
  check(
    Number.isSafeInteger(h.totalSize) && h.totalSize >= 8,
    "total_size",
    `total_size must be at least the 8-byte safetensors header length, got ${h.totalSize}`,
  );
}

/**
 * Checks an update's header before any of its bytes are stored. Throws
 * `InvalidUpdateError` (header field, config, base model),
 * `StaleRoundError` (round not open; names the current round),
 * `NotInCohortError`, `UpdateConflictError` (another update from this
 * client this round) or `UpdateTooLargeError`.
 *
 * @example
 * const d = validateUpdate({ federation, clientId, header, currentRound, accepted });
 * if (d.kind === "duplicate") return ackFor(d.existing);
 */
export function validateUpdate(req: UpdateRequest): UpdateDecision {
  const { federation, clientId, header } = req;
  checkHeaderFields(clientId, header);
  const decision = admitToRound(
    { ...header, federationId: federation.id, clientId },
    req.currentRound,
    req.accepted,
  );
  if (decision.kind === "duplicate") return decision;
  if (header.totalSize > federation.policy.maxUpdateBytes) {
    throw new UpdateTooLargeError(clientId, header.totalSize, federation.policy.maxUpdateBytes);
  }
  parseUpdateConfig(federation.schema, clientId, header.configJson);
  return decision;
}
