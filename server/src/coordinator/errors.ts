/**
 * Typed errors of the coordinator's round logic. Each declares, where it is
 * defined, its transport-free `code` and its `detail()` (a stable
 * `ErrorReason`, metadata, the fields at fault) — `core/errors.ts`'s
 * `DomainError` — which the RPC edge maps once to a gRPC status; nothing here
 * imports gRPC. Messages are self-contained: they name the federation,
 * client, round, tensor or field at fault.
 */

import { AdapterFormatError, ErrorReason } from "@tributary/protocol";
import { DomainError, type ErrorCode, type ErrorDetail, violationOf } from "../core/errors.ts";
import type { RoundRecord } from "../core/model.ts";
import { StoreIntegrityError } from "../core/store-errors.ts";
import { MergeOptionsError } from "../merge/errors.ts";

export { UpdateConflictError } from "../core/store-errors.ts";

/** What part of an update an `InvalidUpdateError` is about. */
export interface UpdateFault {
  /** Safetensors tensor name at fault. */
  readonly tensor?: string;
  /** LoRA module (no `base_model.model.` prefix) at fault. */
  readonly module?: string;
  /** Header or config field at fault, e.g. `sha256` or `base_model_name_or_path`. */
  readonly field?: string;
  readonly cause?: unknown;
}

/**
 * An update that does not fit its federation (bad header, config, shapes,
 * dtype, NaN/Inf). → `INVALID_ARGUMENT`.
 *
 * @example
 * throw new InvalidUpdateError("hospital-3", `module m has rank 32, above max_rank 16`, { module: "m" });
 */
export class InvalidUpdateError extends DomainError {
  override readonly name = "InvalidUpdateError";
  readonly code = "invalid-argument";
  readonly tensor?: string;
  readonly module?: string;
  readonly field?: string;
  constructor(
    readonly clientId: string,
    detail: string,
    fault: UpdateFault = {},
  ) {
    super(`update from client "${clientId}": ${detail}`, { cause: fault.cause });
    if (fault.tensor !== undefined) this.tensor = fault.tensor;
    if (fault.module !== undefined) this.module = fault.module;
    if (fault.field !== undefined) this.field = fault.field;
  }
  detail(): ErrorDetail {
    const metadata = {
      client_id: this.clientId,
      tensor: this.tensor,
      module: this.module,
      field: this.field,
    };
    if (this.tensor !== undefined || (this.module !== undefined && this.field === undefined)) {
      return {
        reason: ErrorReason.INVALID_TENSOR,
        metadata,
        fieldViolations: violationOf(this.tensor ?? this.module ?? "", this),
      };
    }
    if (this.cause instanceof AdapterFormatError) return { reason: ErrorReason.MALFORMED_ADAPTER, metadata };
    const fields = this.field !== undefined ? { fieldViolations: violationOf(this.field, this) } : {};
    if (this.cause instanceof StoreIntegrityError) {
      const header =
        this.field !== undefined ? { fieldViolations: violationOf(`header.${this.field}`, this) } : {};
      return { reason: ErrorReason.CONTENT_MISMATCH, metadata, ...header };
    }
    return { reason: ErrorReason.INVALID_FIELD, metadata, ...fields };
  }
}

function describeRound(current: RoundRecord | undefined): string {
  return current === undefined
    ? "no round has been opened yet"
    : `the current round is ${current.number} (${current.state})`;
}

/**
 * An update for a round that is not the federation's
 * OPEN round: closed, failed, published, or not opened yet. → `FAILED_PRECONDITION`.
 */
export class StaleRoundError extends DomainError {
  override readonly name = "StaleRoundError";
  readonly code = "failed-precondition";
  readonly currentRound?: number;
  readonly currentState?: RoundRecord["state"];
  constructor(
    readonly federationId: string,
    readonly submittedRound: number,
    current: RoundRecord | undefined,
    /** Why, when not simply "not open" (a buffered update past its federation's max staleness). */
    why?: string,
  ) {
    super(
      `federation "${federationId}": round ${submittedRound} ${why ?? "is not open for updates"}; ${describeRound(current)}`,
    );
    if (current !== undefined) {
      this.currentRound = current.number;
      this.currentState = current.state;
    }
  }
  detail(): ErrorDetail {
    return {
      reason: ErrorReason.STALE_ROUND,
      metadata: {
        federation_id: this.federationId,
        round: this.submittedRound,
        current_round: this.currentRound,
        current_state: this.currentState,
      },
    };
  }
}

/** An update larger than the federation's `maxUpdateBytes`. → `RESOURCE_EXHAUSTED`. */
export class UpdateTooLargeError extends DomainError {
  override readonly name = "UpdateTooLargeError";
  readonly code = "resource-exhausted";
  constructor(
    readonly clientId: string,
    readonly size: number,
    readonly limit: number,
  ) {
    super(
      `update from client "${clientId}" is ${size} bytes, above the federation's limit of ${limit} bytes`,
    );
  }
  detail(): ErrorDetail {
    return { reason: ErrorReason.UPDATE_TOO_LARGE, metadata: { size: this.size, limit: this.limit } };
  }
}

/** A per-client limit of the coordinator was reached (e.g. concurrent uploads). → `RESOURCE_EXHAUSTED`. */
export class QuotaExceededError extends DomainError {
  override readonly name = "QuotaExceededError";
  readonly code = "resource-exhausted";
  constructor(
    readonly clientId: string,
    /** The limit's name, e.g. `concurrent_uploads`. */
    readonly quota: string,
    readonly limit: number,
    detail: string,
  ) {
    super(`client "${clientId}": ${detail} (limit ${quota} = ${limit})`);
  }
  detail(): ErrorDetail {
    return { reason: ErrorReason.QUOTA_EXCEEDED, metadata: { quota: this.quota, limit: this.limit } };
  }
}

/** A client that is not enrolled in the federation. → `PERMISSION_DENIED`. */
export class NotEnrolledError extends DomainError {
  override readonly name = "NotEnrolledError";
  readonly code = "permission-denied";
  constructor(
    readonly federationId: string,
    readonly clientId: string,
  ) {
    super(`client "${clientId}" is not enrolled in federation "${federationId}"`);
  }
  detail(): ErrorDetail {
    return {
      reason: ErrorReason.NOT_ENROLLED,
      metadata: { federation_id: this.federationId, client_id: this.clientId },
    };
  }
}

/**
 * A command only the federation's leader may carry out (start, close, abort a
 * round, retry a merge, record a merge), asked of another coordinator.
 * → `UNAVAILABLE` `NOT_LEADER`, naming the leader.
 */
export class NotLeaderError extends DomainError {
  override readonly name = "NotLeaderError";
  readonly code = "unavailable";
  constructor(
    readonly federationId: string,
    action: string,
    readonly leader?: { readonly coordinatorId: string; readonly address?: string },
  ) {
    super(
      `federation "${federationId}": cannot ${action} here: ${
        leader === undefined
          ? "no coordinator leads it right now (an election is under way); retry shortly"
          : `coordinator ${leader.coordinatorId}${leader.address !== undefined ? ` at ${leader.address}` : ""} leads it; send the command there`
      }`,
    );
  }
  detail(): ErrorDetail {
    return {
      reason: ErrorReason.NOT_LEADER,
      metadata: {
        federation_id: this.federationId,
        leader_id: this.leader?.coordinatorId,
        leader_address: this.leader?.address,
      },
    };
  }
}

/**
 * An enrolled client that was not selected for the round it submits to.
 * → `FAILED_PRECONDITION`, as `ClientService.SubmitUpdate` documents ("client
 * not in its cohort"): the client may be selected for a later round.
 */
export class NotInCohortError extends DomainError {
  override readonly name = "NotInCohortError";
  readonly code = "failed-precondition";
  constructor(
    readonly federationId: string,
    readonly clientId: string,
    readonly round: number,
  ) {
    super(`client "${clientId}" is not in the cohort of round ${round} of federation "${federationId}"`);
  }
  detail(): ErrorDetail {
    return {
      reason: ErrorReason.NOT_IN_COHORT,
      metadata: { federation_id: this.federationId, client_id: this.clientId, round: this.round },
    };
  }
}

/** No federation with this id. → `NOT_FOUND`. */
export class UnknownFederationError extends DomainError {
  override readonly name = "UnknownFederationError";
  readonly code = "not-found";
  constructor(readonly federationId: string) {
    super(`no federation "${federationId}"`);
  }
  detail(): ErrorDetail {
    return { reason: ErrorReason.FEDERATION_NOT_FOUND, metadata: { federation_id: this.federationId } };
  }
}

/** No round with this number in the federation. → `NOT_FOUND`. */
export class UnknownRoundError extends DomainError {
  override readonly name = "UnknownRoundError";
  readonly code = "not-found";
  constructor(
    readonly federationId: string,
    readonly round: number,
  ) {
    super(`federation "${federationId}" has no round ${round}`);
  }
  detail(): ErrorDetail {
    return {
      reason: ErrorReason.ROUND_NOT_FOUND,
      metadata: { federation_id: this.federationId, round: this.round || undefined },
    };
  }
}

/** A round with rank variants has none of the rank asked for. → `NOT_FOUND`. */
export class UnknownRankVariantError extends DomainError {
  override readonly name = "UnknownRankVariantError";
  readonly code = "not-found";
  constructor(
    readonly federationId: string,
    readonly round: number,
    readonly rank: number,
    readonly ranks: readonly number[],
  ) {
    super(
      `round ${round} of federation "${federationId}" has no adapter of rank ${rank}: its rank variants are ${ranks.join(", ")} (ask for one of them, or rank 0 for the whole merged adapter)`,
    );
  }
  detail(): ErrorDetail {
    return {
      reason: ErrorReason.RANK_VARIANT_NOT_FOUND,
      metadata: {
        federation_id: this.federationId,
        round: this.round,
        rank: this.rank,
        ranks: this.ranks.join(","),
      },
    };
  }
}

/** A federation id that is already taken. → `ALREADY_EXISTS`. */
export class FederationExistsError extends DomainError {
  override readonly name = "FederationExistsError";
  readonly code = "already-exists";
  constructor(readonly federationId: string) {
    super(`federation "${federationId}" already exists`);
  }
  detail(): ErrorDetail {
    return { reason: ErrorReason.FEDERATION_EXISTS, metadata: { federation_id: this.federationId } };
  }
}

/** Enrolling a client that is already enrolled, without `rotate`. → `ALREADY_EXISTS`. */
export class ClientEnrolledError extends DomainError {
  override readonly name = "ClientEnrolledError";
  readonly code = "already-exists";
  constructor(
    readonly federationId: string,
    readonly clientId: string,
  ) {
    super(
      `client "${clientId}" is already enrolled in federation "${federationId}"; enroll it again with rotate (tributary admin enroll --rotate) to replace its token, which stops the old one`,
    );
  }
  detail(): ErrorDetail {
    return {
      reason: ErrorReason.CLIENT_ENROLLED,
      metadata: { federation_id: this.federationId, client_id: this.clientId },
    };
  }
}

/** An invalid federation definition (id, schema, merge spec, policy). → `INVALID_ARGUMENT`. */
export class FederationConfigError extends DomainError {
  override readonly name = "FederationConfigError";
  readonly code = "invalid-argument";
  constructor(
    readonly federationId: string,
    /** Field at fault, e.g. `policy.quorum`. */
    readonly field: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(`federation "${federationId}": ${field} ${detail}`, options);
  }
  detail(): ErrorDetail {
    return {
      reason: ErrorReason.INVALID_FEDERATION,
      metadata: { federation_id: this.federationId, field: this.field },
      fieldViolations: violationOf(this.field, this),
    };
  }
}

/**
 * An operator action the round's state does not allow: starting a round while
 * one is running or too few clients are connected, closing a round with no
 * update. → `FAILED_PRECONDITION`.
 */
export class RoundStateError extends DomainError {
  override readonly name = "RoundStateError";
  readonly code = "failed-precondition";
  constructor(
    readonly federationId: string,
    detail: string,
  ) {
    super(`federation "${federationId}": ${detail}`);
  }
  detail(): ErrorDetail {
    return { reason: ErrorReason.ROUND_STATE, metadata: { federation_id: this.federationId } };
  }
}

/** Another round would spend more than the federation's privacy budget. → `FAILED_PRECONDITION`. */
export class PrivacyBudgetError extends DomainError {
  override readonly name = "PrivacyBudgetError";
  readonly code = "failed-precondition";
  constructor(
    readonly federationId: string,
    readonly spent: number,
    readonly budget: number,
    readonly projected: number,
  ) {
    super(
      `federation "${federationId}": privacy budget spent: ε = ${fmt(spent)} of ${fmt(budget)}, and another round would take it to ${fmt(projected)}; no round opens`,
    );
  }
  detail(): ErrorDetail {
    return {
      reason: ErrorReason.PRIVACY_BUDGET_SPENT,
      metadata: {
        federation_id: this.federationId,
        epsilon: String(this.spent),
        epsilon_budget: String(this.budget),
      },
    };
  }
}

function fmt(x: number): string {
  return Number.isFinite(x) ? x.toFixed(4) : "∞";
}

/**
 * The code the edge should map `err` to: a `DomainError`'s own code,
 * `invalid-argument` for adapter and merge-option errors, `undefined` for
 * anything else (an internal error).
 *
 * @example
 * const status = { "invalid-argument": Code.InvalidArgument, ... }[errorKind(err) ?? "internal"];
 */
export function errorKind(err: unknown): ErrorCode | undefined {
  if (err instanceof DomainError) return err.code;
  if (err instanceof AdapterFormatError || err instanceof MergeOptionsError) return "invalid-argument";
  return undefined;
}

/**
 * A resumed upload whose `resume_offset` is not the number of bytes the
 * coordinator durably holds. → `FAILED_PRECONDITION`; the message says where
 * to resume from.
 */
export class ResumeOffsetError extends DomainError {
  override readonly name = "ResumeOffsetError";
  readonly code = "failed-precondition";
  constructor(
    readonly clientId: string,
    readonly updateId: string,
    readonly resumeOffset: number,
    readonly durableBytes: number,
  ) {
    super(
      `update "${updateId}" from client "${clientId}": resume_offset ${resumeOffset} does not match the ${durableBytes} bytes already stored; resume from ${durableBytes} (GetUploadStatus) or resend from 0`,
    );
  }
  detail(): ErrorDetail {
    return {
      reason: ErrorReason.RESUME_OFFSET_MISMATCH,
      metadata: {
        update_id: this.updateId,
        requested_offset: this.resumeOffset,
        resume_offset: this.durableBytes,
      },
    };
  }
}

/**
 * A request field that breaks its rule (an id's characters or length, a
 * content hash's form), refused before anything else reads it; the message
 * quotes at most a short prefix of the value. → `INVALID_ARGUMENT`.
 */
export class InvalidRequestError extends DomainError {
  override readonly name = "InvalidRequestError";
  readonly code = "invalid-argument";
  constructor(
    /** The field at fault, e.g. `federation_id`. */
    readonly field: string,
    detail: string,
  ) {
    super(detail);
  }
  detail(): ErrorDetail {
    return {
      reason: ErrorReason.INVALID_FIELD,
      metadata: { field: this.field },
      fieldViolations: violationOf(this.field, this),
    };
  }
}

/**
 * The coordinator deferred an upload so that others get their turn: it sent
 * below the minimum rate while uploads waited, or waited too long for a
 * turn. What arrived is kept; the client resumes later. → `RESOURCE_EXHAUSTED`.
 */
export class UploadDeferredError extends DomainError {
  override readonly name = "UploadDeferredError";
  readonly code = "resource-exhausted";
  constructor(
    readonly clientId: string,
    /** The limit that deferred it: `min_upload_rate` (bytes/s) or `max_upload_wait` (seconds). */
    readonly limit: "min_upload_rate" | "max_upload_wait",
    readonly value: number,
    detail: string,
  ) {
    super(
      `upload of client "${clientId}" deferred: ${detail}; resume later (GetUploadStatus says from where)`,
    );
  }
  detail(): ErrorDetail {
    return { reason: ErrorReason.UPLOAD_DEFERRED, metadata: { limit: this.limit, value: this.value } };
  }
}
