/**
 * The one place typed errors become gRPC statuses. Inside the coordinator,
 * errors are `DomainError`s that declare their transport-free code and their
 * stable `tributary.v1.ErrorReason`, metadata (`google.rpc.ErrorInfo`) and
 * fields at fault (`google.rpc.BadRequest`) where they are defined; here the
 * code becomes a gRPC status and the rest the `grpc-status-details-bin`
 * trailer. Anything unknown becomes `INTERNAL` with a generic message (its
 * details go to the log, not to the client).
 */
import { status } from "@grpc/grpc-js";
import { AdapterFormatError, ErrorReason, type ErrorSpec, serviceError } from "@tributary/protocol";
import { DomainError, type ErrorCode } from "../../core/errors.ts";
import { isStorageFull } from "../../core/storage-faults.ts";
import { MergeInputError, MergeOptionsError } from "../../merge/errors.ts";

const STATUS: Record<ErrorCode, status> = {
  "invalid-argument": status.INVALID_ARGUMENT,
  "failed-precondition": status.FAILED_PRECONDITION,
  "already-exists": status.ALREADY_EXISTS,
  "resource-exhausted": status.RESOURCE_EXHAUSTED,
  "permission-denied": status.PERMISSION_DENIED,
  unauthenticated: status.UNAUTHENTICATED,
  "not-found": status.NOT_FOUND,
  unavailable: status.UNAVAILABLE,
};

/**
 * Code, reason and details of any error raised behind the RPC edge: a
 * `DomainError` declares its own; errors of the pure merge engine, the
 * protocol's adapter reader and the disk are the only others the edge knows.
 */
function describe(err: unknown): Omit<ErrorSpec, "message"> {
  if (err instanceof DomainError) return { code: STATUS[err.code], ...err.detail() };
  if (err instanceof AdapterFormatError) {
    return {
      code: status.INVALID_ARGUMENT,
      reason: ErrorReason.MALFORMED_ADAPTER,
      metadata: { tensor: err.tensor },
      ...(err.tensor !== undefined
        ? { fieldViolations: [{ field: err.tensor, description: err.message }] }
        : {}),
    };
  }
  if (err instanceof MergeInputError || err instanceof MergeOptionsError) {
    return { code: status.INVALID_ARGUMENT, reason: ErrorReason.INVALID_REQUEST };
  }
  if (isStorageFull(err)) return { code: status.RESOURCE_EXHAUSTED, reason: ErrorReason.STORAGE_FULL };
  return { code: status.INTERNAL, reason: ErrorReason.INTERNAL };
}

/** Characters of a status message at most; metadata values and field violations get less. */
export const STATUS_MESSAGE_CHARS = 1024;
const METADATA_VALUE_CHARS = 256;

/** `text`, cut to `max` characters with a note of how long it was. */
function bounded(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length} characters)`;
}

/**
 * A grpc-js `ServiceError` for `err` with its machine-readable details;
 * unknown errors get a generic message. Every string a client's request may
 * have put there is bounded, so the status (sent as HTTP/2 trailers) always
 * fits: a status that does not fit would leave the client with none.
 */
export function toServiceError(err: unknown): ReturnType<typeof serviceError> {
  const spec = describe(err);
  const message =
    spec.code === status.INTERNAL
      ? "internal error (see the coordinator log)"
      : spec.reason === ErrorReason.STORAGE_FULL
        ? "the coordinator's storage is full; retry later"
        : (err as Error).message;
  const metadata = Object.fromEntries(
    Object.entries(spec.metadata ?? {}).map(([k, v]) => [
      k,
      typeof v === "string" ? bounded(v, METADATA_VALUE_CHARS) : v,
    ]),
  );
  const fieldViolations = spec.fieldViolations?.map((f) => ({
    field: bounded(f.field, METADATA_VALUE_CHARS),
    description: bounded(f.description, STATUS_MESSAGE_CHARS / 2),
  }));
  return serviceError({
    ...spec,
    metadata,
    ...(fieldViolations !== undefined ? { fieldViolations } : {}),
    message: bounded(message, STATUS_MESSAGE_CHARS),
  });
}
