/**
 * Typed errors of the coordinator's round logic. Each carries a transport-free
 * `code` that the RPC edge maps once to a gRPC status (`"invalid-argument"` →
 * `INVALID_ARGUMENT`, …); nothing here imports gRPC. Messages are
 * self-contained: they name the federation, client, round, tensor or field at
 * fault.
 */

import { AdapterFormatError } from "@tributary/protocol";
import type { RoundRecord } from "../core/model.ts";
import { MergeOptionsError } from "../merge/errors.ts";

/** Transport-free error kinds, one per gRPC status code the coordinator uses. */
export type CoordinatorErrorCode =
  | "invalid-argument"
  | "failed-precondition"
  | "already-exists"
  | "resource-exhausted"
  | "permission-denied"
  | "not-found";

/**
 * Base class of every coordinator error; `code` says which gRPC status the
 * edge should answer with.
 */
export abstract class CoordinatorError extends Error {
  abstract readonly code: CoordinatorErrorCode;
}

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
export class InvalidUpdateError extends CoordinatorError {
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
export class StaleRoundError extends CoordinatorError {
  override readonly name = "StaleRoundError";
  readonly code = "failed-precondition";
  readonly currentRound?: number;
  readonly currentState?: RoundRecord["state"];
  constructor(
    readonly federationId: string,
    readonly submittedRound: number,
    current: RoundRecord | undefined,
  ) {
    super(
      `federation "${federationId}": round ${submittedRound} is not open for updates; ${describeRound(current)}`,
    );
    if (current !== undefined) {
      this.currentRound = current.number;
      this.currentState = current.state;
    }
  }
}

/**
 * A second, different update from the same client in the same round (another
 * `update_id`, or the same `update_id` with other content). The first update
 * stands; resubmitting it with its own `update_id` is idempotent.
 * → `ALREADY_EXISTS` (the round's update for this client already exists).
 */
export class ConflictingUpdateError extends CoordinatorError {
  override readonly name = "ConflictingUpdateError";
  readonly code = "already-exists";
  constructor(
    readonly clientId: string,
    readonly round: number,
    /** `update_id` of the update already accepted. */
    readonly existingUpdateId: string,
    readonly updateId: string,
    detail?: string,
  ) {
    super(
      detail ??
        `client "${clientId}" already submitted update "${existingUpdateId}" for round ${round}; update "${updateId}" is refused (one update per client per round)`,
    );
  }
}

/** An update larger than the federation's `maxUpdateBytes`. → `RESOURCE_EXHAUSTED`. */
export class UpdateTooLargeError extends CoordinatorError {
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
}

/** A per-client limit of the coordinator was reached (e.g. concurrent uploads). → `RESOURCE_EXHAUSTED`. */
export class QuotaExceededError extends CoordinatorError {
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
}

/** A client that is not enrolled in the federation. → `PERMISSION_DENIED`. */
export class NotEnrolledError extends CoordinatorError {
  override readonly name = "NotEnrolledError";
  readonly code = "permission-denied";
  constructor(
    readonly federationId: string,
    readonly clientId: string,
  ) {
    super(`client "${clientId}" is not enrolled in federation "${federationId}"`);
  }
}

/**
 * An enrolled client that was not selected for the round it submits to.
 * → `FAILED_PRECONDITION`, as `ClientService.SubmitUpdate` documents ("client
 * not in its cohort"): the client may be selected for a later round.
 */
export class NotInCohortError extends CoordinatorError {
  override readonly name = "NotInCohortError";
  readonly code = "failed-precondition";
  constructor(
    readonly federationId: string,
    readonly clientId: string,
    readonly round: number,
  ) {
    super(`client "${clientId}" is not in the cohort of round ${round} of federation "${federationId}"`);
  }
}

/** No federation with this id. → `NOT_FOUND`. */
export class UnknownFederationError extends CoordinatorError {
  override readonly name = "UnknownFederationError";
  readonly code = "not-found";
  constructor(readonly federationId: string) {
    super(`no federation "${federationId}"`);
  }
}

/** No round with this number in the federation. → `NOT_FOUND`. */
export class UnknownRoundError extends CoordinatorError {
  override readonly name = "UnknownRoundError";
  readonly code = "not-found";
  constructor(
    readonly federationId: string,
    readonly round: number,
  ) {
    super(`federation "${federationId}" has no round ${round}`);
  }
}

/** A federation id that is already taken. → `ALREADY_EXISTS`. */
export class FederationExistsError extends CoordinatorError {
  override readonly name = "FederationExistsError";
  readonly code = "already-exists";
  constructor(readonly federationId: string) {
    super(`federation "${federationId}" already exists`);
  }
}

/** An invalid federation definition (id, schema, merge spec, policy). → `INVALID_ARGUMENT`. */
export class FederationConfigError extends CoordinatorError {
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
}

/**
 * An operator action the round's state does not allow: starting a round while
 * one is running or too few clients are connected, closing a round with no
 * update. → `FAILED_PRECONDITION`.
 */
export class RoundStateError extends CoordinatorError {
  override readonly name = "RoundStateError";
  readonly code = "failed-precondition";
  constructor(
    readonly federationId: string,
    detail: string,
  ) {
    super(`federation "${federationId}": ${detail}`);
  }
}

/**
 * The code the edge should map `err` to: a `CoordinatorError`'s own code,
 * `invalid-argument` for adapter and merge-option errors, `undefined` for
 * anything else (an internal error).
 *
 * @example
 * const status = { "invalid-argument": Code.InvalidArgument, ... }[errorKind(err) ?? "internal"];
 */
export function errorKind(err: unknown): CoordinatorErrorCode | undefined {
  if (err instanceof CoordinatorError) return err.code;
  if (err instanceof AdapterFormatError || err instanceof MergeOptionsError) return "invalid-argument";
  return undefined;
}

/**
 * A resumed upload whose `resume_offset` is not the number of bytes the
 * coordinator durably holds. → `FAILED_PRECONDITION`; the message says where
 * to resume from.
 */
export class ResumeOffsetError extends CoordinatorError {
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
}
