/**
 * The one place typed errors become gRPC statuses. Inside the coordinator,
 * errors are `Error` subclasses with useful messages; here each class maps
 * to a status code, and anything unknown becomes `INTERNAL` with a generic
 * message (its details go to the log, not to the client).
 */
import { type ServiceError, status } from "@grpc/grpc-js";
import { AdapterFormatError } from "@tributary/protocol";
import { CoordinatorError, type CoordinatorErrorCode } from "../../coordinator/errors.ts";
import { MergeInputError, MergeOptionsError } from "../../merge/errors.ts";
import { StoreArgumentError, StoreIntegrityError, UploadConflictError } from "../../store/errors.ts";
import { PermissionDeniedError, UnauthenticatedError } from "./auth.ts";

const COORDINATOR_CODES: Record<CoordinatorErrorCode, status> = {
  "invalid-argument": status.INVALID_ARGUMENT,
  "failed-precondition": status.FAILED_PRECONDITION,
  "already-exists": status.ALREADY_EXISTS,
  "resource-exhausted": status.RESOURCE_EXHAUSTED,
  "permission-denied": status.PERMISSION_DENIED,
  "not-found": status.NOT_FOUND,
};

/** The gRPC status code for an error raised inside the coordinator. */
export function statusCodeOf(err: unknown): status {
  if (err instanceof CoordinatorError) return COORDINATOR_CODES[err.code];
  if (err instanceof UnauthenticatedError) return status.UNAUTHENTICATED;
  if (err instanceof PermissionDeniedError) return status.PERMISSION_DENIED;
  if (
    err instanceof AdapterFormatError ||
    err instanceof MergeInputError ||
    err instanceof MergeOptionsError ||
    err instanceof StoreIntegrityError ||
    err instanceof StoreArgumentError
  ) {
    return status.INVALID_ARGUMENT;
  }
  if (err instanceof UploadConflictError) return status.ALREADY_EXISTS;
  return status.INTERNAL;
}

/** A grpc-js `ServiceError` for `err`; unknown errors get a generic message. */
export function toServiceError(err: unknown): Partial<ServiceError> {
  const code = statusCodeOf(err);
  const details =
    code === status.INTERNAL ? "internal error (see the coordinator log)" : (err as Error).message;
  return { code, details, message: details };
}
