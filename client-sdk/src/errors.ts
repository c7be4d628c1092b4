/**
 * The SDK's typed errors. Every error it throws is a {@link TributaryError}
 * carrying a `code` (the gRPC status name the coordinator answered with, or an
 * SDK kind such as `"INTEGRITY"`), the server's own message in `details`, and
 * — for errors from the coordinator — the machine-readable `reason` and
 * `metadata` of its `google.rpc.ErrorInfo` (`tributary.v1.ErrorReason`).
 * gRPC failures are mapped here, once, on the status code and the reason,
 * never on message text; transient ones are retried by the caller and only
 * surface as {@link UnavailableError} when retries run out.
 */
import { type ServiceError, status } from "@grpc/grpc-js";
import {
  type FieldViolation,
  readableDetails,
  type StatusDetails,
  statusDetailsOf,
} from "@tributary/protocol";

/**
 * Base class of the SDK's errors.
 *
 * @example
 * try { await client.submit(3, "./adapter", { samples: 1200 }); }
 * catch (err) { if (err instanceof TributaryError) console.error(err.code, err.details); }
 */
export class TributaryError extends Error {
  override readonly name: string = "TributaryError";
  /** The coordinator's `ErrorInfo.reason`, e.g. `"STALE_ROUND"`; `undefined` for local errors. */
  readonly reason?: string;
  /** The coordinator's `ErrorInfo.metadata` (e.g. `current_round`); empty for local errors. */
  readonly metadata: Readonly<Record<string, string>>;
  /** The coordinator's `BadRequest` field violations (the field or tensor at fault). */
  readonly fieldViolations: readonly FieldViolation[];
  constructor(
    /** gRPC status name (`"FAILED_PRECONDITION"`, …) or SDK kind (`"INTEGRITY"`, `"ROUND_FAILED"`). */
    readonly code: string,
    /** The coordinator's message, or the SDK's when the error is local. */
    readonly details: string,
    options?: ErrorOptions & { readonly status?: StatusDetails },
  ) {
    super(
      `${code}${options?.status?.errorInfo !== undefined ? ` (${options.status.errorInfo.reason})` : ""}: ${details}`,
      options,
    );
    const info = options?.status?.errorInfo;
    if (info !== undefined) this.reason = info.reason;
    this.metadata = info?.metadata ?? {};
    this.fieldViolations = options?.status?.fieldViolations ?? [];
  }
}

/** The update does not fit the federation (shape, dtype, base model, NaN/Inf, bad header). `INVALID_ARGUMENT`. */
export class InvalidUpdateError extends TributaryError {
  override readonly name: string = "InvalidUpdateError";
  /** The tensor at fault, when the coordinator named one (`metadata.tensor`). */
  get tensor(): string | undefined {
    return this.metadata.tensor;
  }
  /** The header or config field at fault, when the coordinator named one (`metadata.field`). */
  get field(): string | undefined {
    return this.metadata.field;
  }
}

/** The coordinator refused the call in the current state of things. `FAILED_PRECONDITION`. */
export class PreconditionError extends TributaryError {
  override readonly name: string = "PreconditionError";
}

/** The round is not open for updates any more (or not yet); `currentRound` is the coordinator's. `FAILED_PRECONDITION`. */
export class StaleRoundError extends PreconditionError {
  override readonly name: string = "StaleRoundError";
  /** The federation's current round (`metadata.current_round`), when there is one. */
  get currentRound(): number | undefined {
    const n = this.metadata.current_round;
    return n === undefined ? undefined : Number(n);
  }
}

/** This client was not selected for the round. `FAILED_PRECONDITION`. */
export class NotInCohortError extends PreconditionError {
  override readonly name: string = "NotInCohortError";
}

/** The client already submitted a different update for the round. `ALREADY_EXISTS`. */
export class ConflictingUpdateError extends TributaryError {
  override readonly name: string = "ConflictingUpdateError";
}

/** The update is over the federation's size limit. `RESOURCE_EXHAUSTED`. */
export class UpdateTooLargeError extends TributaryError {
  override readonly name: string = "UpdateTooLargeError";
}

/** A per-client limit of the coordinator was reached (reason `QUOTA_EXCEEDED`, `metadata.quota`, `metadata.limit`). `RESOURCE_EXHAUSTED`. */
export class QuotaExceededError extends TributaryError {
  override readonly name: string = "QuotaExceededError";
}

/** The token is missing or unknown. `UNAUTHENTICATED`. */
export class UnauthenticatedError extends TributaryError {
  override readonly name: string = "UnauthenticatedError";
}

/** The client is not enrolled in the federation. `PERMISSION_DENIED`. */
export class PermissionDeniedError extends TributaryError {
  override readonly name: string = "PermissionDeniedError";
}

/** No such federation, round or adapter. `NOT_FOUND`. */
export class NotFoundError extends TributaryError {
  override readonly name: string = "NotFoundError";
}

/** A fault of the coordinator itself (`INTERNAL`/`UNKNOWN`); not retried, since resending the same call rarely helps. */
export class InternalError extends TributaryError {
  override readonly name: string = "InternalError";
}

/** The coordinator stayed unreachable (or kept failing transiently) through every retry; `code` is the last status. */
export class UnavailableError extends TributaryError {
  override readonly name: string = "UnavailableError";
}

/** Downloaded adapter bytes do not hash to the announced content hash. Code `"INTEGRITY"`. */
export class IntegrityError extends TributaryError {
  override readonly name: string = "IntegrityError";
  constructor(
    details: string,
    /** The sha256 the adapter should have. */
    readonly expected: string,
    /** The sha256 of the bytes received. */
    readonly actual: string,
  ) {
    super("INTEGRITY", details);
  }
}

/** The round ended without a merged adapter. Code `"ROUND_FAILED"` or `"ROUND_ABORTED"`. */
export class RoundFailedError extends TributaryError {
  override readonly name: string = "RoundFailedError";
  constructor(
    readonly round: number,
    /** `"failed"`, `"aborted"`, or `"unknown"` when the round ended while this client was not watching. */
    readonly state: "failed" | "aborted" | "unknown",
    /** The coordinator's `failure_reason` (for people). */
    readonly failureReason: string,
  ) {
    super(
      state === "aborted" ? "ROUND_ABORTED" : "ROUND_FAILED",
      `round ${round} ${state === "unknown" ? "ended without a result" : state}${failureReason === "" ? "" : `: ${failureReason}`}`,
    );
  }
}

/** gRPC codes worth retrying: the connection dropped, a deadline passed, or the server is (re)starting. */
const TRANSIENT = new Set<number>([
  status.UNAVAILABLE,
  status.DEADLINE_EXCEEDED,
  status.CANCELLED,
  status.ABORTED,
]);

/** Whether `err` is a grpc-js `ServiceError` (a numeric `code` plus `details`). */
export function isServiceError(err: unknown): err is ServiceError {
  return err instanceof Error && typeof (err as Partial<ServiceError>).code === "number" && "details" in err;
}

/**
 * Whether a failed call is worth retrying: a dropped connection or a
 * coordinator restarting (`UNAVAILABLE`, `DEADLINE_EXCEEDED`, `CANCELLED` not
 * asked for by this client, `ABORTED`), or a resumed upload that raced the
 * coordinator's bookkeeping of the dropped one (reason
 * `RESUME_OFFSET_MISMATCH`: ask `GetUploadStatus` again), or a coordinator
 * whose disk is full (reason `STORAGE_FULL`), or an upload the coordinator
 * deferred so others get their turn (reason `UPLOAD_DEFERRED`: it resumes).
 * `INTERNAL` and `UNKNOWN` are not transient.
 */
export function isTransient(err: unknown): boolean {
  if (!isServiceError(err)) return false;
  if (TRANSIENT.has(err.code)) return true;
  const reason = statusDetailsOf(err)?.errorInfo?.reason;
  return reason === "RESUME_OFFSET_MISMATCH" || reason === "STORAGE_FULL" || reason === "UPLOAD_DEFERRED";
}

/** The gRPC status name of `code`, e.g. `"FAILED_PRECONDITION"`. */
export function statusName(code: number): string {
  return status[code] ?? `STATUS_${code}`;
}

/**
 * The typed SDK error for a gRPC failure: chosen by the reason of its
 * `ErrorInfo` (and the status code when there is none), with the server's
 * message as `details`, the reason and metadata, and the original as `cause`.
 */
export function fromServiceError(err: ServiceError): TributaryError {
  const name = statusName(err.code);
  const details = readableDetails(err.details || err.message);
  const statusDetails = statusDetailsOf(err);
  const opts = { cause: err, ...(statusDetails !== undefined ? { status: statusDetails } : {}) };
  switch (statusDetails?.errorInfo?.reason) {
    case "STALE_ROUND":
      return new StaleRoundError(name, details, opts);
    case "NOT_IN_COHORT":
      return new NotInCohortError(name, details, opts);
    case "UPDATE_CONFLICT":
      return new ConflictingUpdateError(name, details, opts);
    case "UPDATE_TOO_LARGE":
      return new UpdateTooLargeError(name, details, opts);
    case "QUOTA_EXCEEDED":
      return new QuotaExceededError(name, details, opts);
    case "STORAGE_FULL":
    case "UPLOAD_DEFERRED":
      return new UnavailableError(name, details, opts);
  }
  switch (err.code) {
    case status.INVALID_ARGUMENT:
      return new InvalidUpdateError(name, details, opts);
    case status.FAILED_PRECONDITION:
      return new PreconditionError(name, details, opts);
    case status.ALREADY_EXISTS:
      return new ConflictingUpdateError(name, details, opts);
    case status.RESOURCE_EXHAUSTED:
      return new UpdateTooLargeError(name, details, opts);
    case status.UNAUTHENTICATED:
      return new UnauthenticatedError(name, details, opts);
    case status.PERMISSION_DENIED:
      return new PermissionDeniedError(name, details, opts);
    case status.NOT_FOUND:
      return new NotFoundError(name, details, opts);
    case status.INTERNAL:
    case status.UNKNOWN:
      return new InternalError(name, details, opts);
    default:
      return TRANSIENT.has(err.code)
        ? new UnavailableError(name, details, opts)
        : new TributaryError(name, details, opts);
  }
}
