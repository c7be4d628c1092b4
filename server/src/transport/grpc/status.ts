/**
 * The one place typed errors become gRPC statuses. Inside the coordinator,
 * errors are `Error` subclasses with useful messages; here each class maps
 * to a status code, a stable `tributary.v1.ErrorReason` with its metadata
 * (`google.rpc.ErrorInfo`) and, for bad input, the field at fault
 * (`google.rpc.BadRequest`), sent in the `grpc-status-details-bin` trailer.
 * Anything unknown becomes `INTERNAL` with a generic message (its details go
 * to the log, not to the client).
 */
import { status } from "@grpc/grpc-js";
import { AdapterFormatError, ErrorReason, type ErrorSpec, serviceError } from "@tributary/protocol";
import {
  ConflictingUpdateError,
  CoordinatorError,
  type CoordinatorErrorCode,
  FederationConfigError,
  FederationExistsError,
  InvalidUpdateError,
  NotEnrolledError,
  NotInCohortError,
  QuotaExceededError,
  ResumeOffsetError,
  RoundStateError,
  StaleRoundError,
  UnknownFederationError,
  UnknownRoundError,
  UpdateTooLargeError,
} from "../../coordinator/errors.ts";
import { isStorageFull } from "../../core/storage-faults.ts";
import { StoreArgumentError, StoreIntegrityError, UploadConflictError } from "../../core/store-errors.ts";
import { MergeInputError, MergeOptionsError } from "../../merge/errors.ts";
import { PermissionDeniedError, UnauthenticatedError } from "./auth.ts";

const COORDINATOR_CODES: Record<CoordinatorErrorCode, status> = {
  "invalid-argument": status.INVALID_ARGUMENT,
  "failed-precondition": status.FAILED_PRECONDITION,
  "already-exists": status.ALREADY_EXISTS,
  "resource-exhausted": status.RESOURCE_EXHAUSTED,
  "permission-denied": status.PERMISSION_DENIED,
  "not-found": status.NOT_FOUND,
};

type Reasoned = Pick<ErrorSpec, "reason" | "metadata" | "fieldViolations">;

const violation = (field: string, description: string) => [{ field, description }];

/** The reason, metadata and field violations of a coordinator error. */
function coordinatorReason(err: CoordinatorError): Reasoned {
  if (err instanceof StaleRoundError) {
    return {
      reason: ErrorReason.STALE_ROUND,
      metadata: {
        federation_id: err.federationId,
        round: err.submittedRound,
        current_round: err.currentRound,
        current_state: err.currentState,
      },
    };
  }
  if (err instanceof NotInCohortError) {
    return {
      reason: ErrorReason.NOT_IN_COHORT,
      metadata: { federation_id: err.federationId, client_id: err.clientId, round: err.round },
    };
  }
  if (err instanceof ResumeOffsetError) {
    return {
      reason: ErrorReason.RESUME_OFFSET_MISMATCH,
      metadata: {
        update_id: err.updateId,
        requested_offset: err.resumeOffset,
        resume_offset: err.durableBytes,
      },
    };
  }
  if (err instanceof RoundStateError) {
    return { reason: ErrorReason.ROUND_STATE, metadata: { federation_id: err.federationId } };
  }
  if (err instanceof InvalidUpdateError) {
    const metadata = { client_id: err.clientId, tensor: err.tensor, module: err.module, field: err.field };
    if (err.tensor !== undefined || (err.module !== undefined && err.field === undefined)) {
      return {
        reason: ErrorReason.INVALID_TENSOR,
        metadata,
        fieldViolations: violation(err.tensor ?? err.module ?? "", err.message),
      };
    }
    if (err.cause instanceof AdapterFormatError) return { reason: ErrorReason.MALFORMED_ADAPTER, metadata };
    if (err.cause instanceof StoreIntegrityError) {
      return {
        reason: ErrorReason.CONTENT_MISMATCH,
        metadata,
        ...(err.field !== undefined
          ? { fieldViolations: violation(`header.${err.field}`, err.message) }
          : {}),
      };
    }
    return {
      reason: ErrorReason.INVALID_FIELD,
      metadata,
      ...(err.field !== undefined ? { fieldViolations: violation(err.field, err.message) } : {}),
    };
  }
  if (err instanceof FederationConfigError) {
    return {
      reason: ErrorReason.INVALID_FEDERATION,
      metadata: { federation_id: err.federationId, field: err.field },
      fieldViolations: violation(err.field, err.message),
    };
  }
  if (err instanceof ConflictingUpdateError) {
    return {
      reason: ErrorReason.UPDATE_CONFLICT,
      metadata: { round: err.round, existing_update_id: err.existingUpdateId },
    };
  }
  if (err instanceof FederationExistsError) {
    return { reason: ErrorReason.FEDERATION_EXISTS, metadata: { federation_id: err.federationId } };
  }
  if (err instanceof UpdateTooLargeError) {
    return { reason: ErrorReason.UPDATE_TOO_LARGE, metadata: { size: err.size, limit: err.limit } };
  }
  if (err instanceof QuotaExceededError) {
    return { reason: ErrorReason.QUOTA_EXCEEDED, metadata: { quota: err.quota, limit: err.limit } };
  }
  if (err instanceof NotEnrolledError) {
    return {
      reason: ErrorReason.NOT_ENROLLED,
      metadata: { federation_id: err.federationId, client_id: err.clientId },
    };
  }
  if (err instanceof UnknownFederationError) {
    return { reason: ErrorReason.FEDERATION_NOT_FOUND, metadata: { federation_id: err.federationId } };
  }
  if (err instanceof UnknownRoundError) {
    return {
      reason: ErrorReason.ROUND_NOT_FOUND,
      metadata: { federation_id: err.federationId, round: err.round || undefined },
    };
  }
  return { reason: ErrorReason.INTERNAL };
}

/** Code, reason and details of any error raised behind the RPC edge. */
function describe(err: unknown): Omit<ErrorSpec, "message"> {
  if (err instanceof CoordinatorError)
    return { code: COORDINATOR_CODES[err.code], ...coordinatorReason(err) };
  if (err instanceof UnauthenticatedError)
    return { code: status.UNAUTHENTICATED, reason: ErrorReason.UNAUTHENTICATED };
  if (err instanceof PermissionDeniedError) {
    return { code: status.PERMISSION_DENIED, reason: ErrorReason.PERMISSION_DENIED };
  }
  if (err instanceof AdapterFormatError) {
    return {
      code: status.INVALID_ARGUMENT,
      reason: ErrorReason.MALFORMED_ADAPTER,
      metadata: { tensor: err.tensor },
      ...(err.tensor !== undefined ? { fieldViolations: violation(err.tensor, err.message) } : {}),
    };
  }
  if (err instanceof StoreIntegrityError) {
    const field =
      err.reason === "sha256-mismatch"
        ? "content_hash"
        : err.reason.startsWith("size")
          ? "total_size"
          : undefined;
    return {
      code: status.INVALID_ARGUMENT,
      reason: ErrorReason.CONTENT_MISMATCH,
      metadata: { field },
      ...(field !== undefined ? { fieldViolations: violation(`header.${field}`, err.message) } : {}),
    };
  }
  if (
    err instanceof MergeInputError ||
    err instanceof MergeOptionsError ||
    err instanceof StoreArgumentError
  ) {
    return { code: status.INVALID_ARGUMENT, reason: ErrorReason.INVALID_REQUEST };
  }
  if (isStorageFull(err)) {
    return { code: status.RESOURCE_EXHAUSTED, reason: ErrorReason.STORAGE_FULL };
  }
  if (err instanceof UploadConflictError) {
    return {
      code: status.ALREADY_EXISTS,
      reason: ErrorReason.UPDATE_CONFLICT,
      metadata: { round: err.key.round, existing_update_id: err.existingUpdateId },
    };
  }
  return { code: status.INTERNAL, reason: ErrorReason.INTERNAL };
}

/**
 * A grpc-js `ServiceError` for `err` with its machine-readable details;
 * unknown errors get a generic message.
 */
export function toServiceError(err: unknown): ReturnType<typeof serviceError> {
  const spec = describe(err);
  const message =
    spec.code === status.INTERNAL
      ? "internal error (see the coordinator log)"
      : spec.reason === ErrorReason.STORAGE_FULL
        ? "the coordinator's storage is full; retry later"
        : (err as Error).message;
  return serviceError({ ...spec, message });
}
