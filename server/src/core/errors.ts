/**
 * What every error of the round logic declares where it is defined: a
 * transport-free `code` (which gRPC status the RPC edge answers with) and a
 * stable `tributary.v1.ErrorReason` with its metadata and the fields at
 * fault. The edge maps them once, without knowing the classes; nothing here
 * imports gRPC.
 */
import type { ErrorReason } from "@tributary/protocol";

/** Transport-free error kinds, one per gRPC status code the coordinator answers with. */
export type ErrorCode =
  | "invalid-argument"
  | "failed-precondition"
  | "already-exists"
  | "resource-exhausted"
  | "permission-denied"
  | "unauthenticated"
  | "not-found"
  | "unavailable";

/** A field (or tensor) at fault and what is wrong with it (`google.rpc.BadRequest.FieldViolation`). */
export interface FieldFault {
  readonly field: string;
  readonly description: string;
}

/** The machine-readable part of an error, for clients to decide on. */
export interface ErrorDetail {
  readonly reason: ErrorReason;
  /** `google.rpc.ErrorInfo.metadata`; `undefined` values are left out. */
  readonly metadata?: Readonly<Record<string, string | number | undefined>>;
  readonly fieldViolations?: readonly FieldFault[];
}

/**
 * Base class of every error the coordinator answers with its own status:
 * each subclass declares its `code` and its `detail()` (reason, metadata,
 * fields) where it is defined. Messages are for people and say what to do.
 *
 * @example
 * class RoundGoneError extends DomainError {
 *   readonly code = "not-found";
 *   detail() { return { reason: ErrorReason.ROUND_NOT_FOUND }; }
 * }
 */
export abstract class DomainError extends Error {
  abstract readonly code: ErrorCode;
  /** Reason, metadata and fields at fault. */
  abstract detail(): ErrorDetail;
}

/** One violation of `field`, described by `err`'s message. */
export function violationOf(field: string, err: Error): readonly FieldFault[] {
  return [{ field, description: err.message }];
}
