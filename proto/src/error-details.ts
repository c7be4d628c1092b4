/**
 * Machine-readable error details on the wire, as gRPC's richer error model
 * defines them: a `google.rpc.Status` in the `grpc-status-details-bin`
 * trailer whose `details` hold a `google.rpc.ErrorInfo` (a stable `reason`
 * from `tributary.v1.ErrorReason`, domain {@link ERROR_DOMAIN}, string
 * `metadata`) and, for bad input, a `google.rpc.BadRequest` with field
 * violations. Encoded and decoded here with the protobuf wire primitives (the
 * three messages are small and fixed), so no google.rpc code generation is
 * needed in any package; other languages use their googleapis types or, like
 * the Python client, an equally small decoder.
 *
 * Field numbers (from the google.rpc definitions):
 * `Status{int32 code = 1; string message = 2; repeated Any details = 3}`,
 * `Any{string type_url = 1; bytes value = 2}`,
 * `ErrorInfo{string reason = 1; string domain = 2; map<string, string> metadata = 3}`,
 * `BadRequest{repeated FieldViolation field_violations = 1}`,
 * `FieldViolation{string field = 1; string description = 2}`.
 */
import { BinaryReader, BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import * as grpc from "@grpc/grpc-js";
import { ErrorReason } from "./gen/tributary/v1/errors_pb.ts";

/** The trailer that carries the encoded `google.rpc.Status`. */
export const STATUS_DETAILS_KEY = "grpc-status-details-bin";
/** `ErrorInfo.domain` of every Tributary error. */
export const ERROR_DOMAIN = "tributary.dev";
/** `Any.type_url` of `google.rpc.ErrorInfo`. */
export const ERROR_INFO_TYPE = "type.googleapis.com/google.rpc.ErrorInfo";
/** `Any.type_url` of `google.rpc.BadRequest`. */
export const BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest";

/** A reason string: an {@link ErrorReason} value's name, e.g. `"STALE_ROUND"`. */
export type ErrorReasonName = Exclude<keyof typeof ErrorReason, "UNSPECIFIED" | number>;

/** `google.rpc.ErrorInfo`. */
export interface ErrorInfo {
  readonly reason: string;
  readonly domain: string;
  readonly metadata: Readonly<Record<string, string>>;
}

/** One `google.rpc.BadRequest.FieldViolation`. */
export interface FieldViolation {
  /** The request field, tensor or config field at fault, e.g. `header.content_hash`. */
  readonly field: string;
  readonly description: string;
}

/** The decoded `google.rpc.Status` of a failed call. */
export interface StatusDetails {
  /** gRPC status code. */
  readonly code: number;
  readonly message: string;
  readonly errorInfo?: ErrorInfo;
  readonly fieldViolations: readonly FieldViolation[];
}

/**
 * The status code each reason comes with, as `errors.proto` documents it.
 *
 * @example
 * REASON_STATUS.STALE_ROUND === grpc.status.FAILED_PRECONDITION;
 */
export const REASON_STATUS: Readonly<Record<ErrorReasonName, grpc.status>> = Object.freeze({
  STALE_ROUND: grpc.status.FAILED_PRECONDITION,
  NOT_IN_COHORT: grpc.status.FAILED_PRECONDITION,
  RESUME_OFFSET_MISMATCH: grpc.status.FAILED_PRECONDITION,
  ROUND_STATE: grpc.status.FAILED_PRECONDITION,
  PRIVACY_BUDGET_SPENT: grpc.status.FAILED_PRECONDITION,
  INVALID_TENSOR: grpc.status.INVALID_ARGUMENT,
  INVALID_FIELD: grpc.status.INVALID_ARGUMENT,
  MALFORMED_ADAPTER: grpc.status.INVALID_ARGUMENT,
  CONTENT_MISMATCH: grpc.status.INVALID_ARGUMENT,
  MALFORMED_MESSAGE: grpc.status.INVALID_ARGUMENT,
  INVALID_REQUEST: grpc.status.INVALID_ARGUMENT,
  INVALID_FEDERATION: grpc.status.INVALID_ARGUMENT,
  UPDATE_CONFLICT: grpc.status.ALREADY_EXISTS,
  FEDERATION_EXISTS: grpc.status.ALREADY_EXISTS,
  CLIENT_ENROLLED: grpc.status.ALREADY_EXISTS,
  UPDATE_TOO_LARGE: grpc.status.RESOURCE_EXHAUSTED,
  QUOTA_EXCEEDED: grpc.status.RESOURCE_EXHAUSTED,
  STORAGE_FULL: grpc.status.RESOURCE_EXHAUSTED,
  UPLOAD_DEFERRED: grpc.status.RESOURCE_EXHAUSTED,
  UNAUTHENTICATED: grpc.status.UNAUTHENTICATED,
  PERMISSION_DENIED: grpc.status.PERMISSION_DENIED,
  NOT_ENROLLED: grpc.status.PERMISSION_DENIED,
  FEDERATION_NOT_FOUND: grpc.status.NOT_FOUND,
  ROUND_NOT_FOUND: grpc.status.NOT_FOUND,
  RANK_VARIANT_NOT_FOUND: grpc.status.NOT_FOUND,
  SHUTTING_DOWN: grpc.status.UNAVAILABLE,
  STORE_UNAVAILABLE: grpc.status.UNAVAILABLE,
  NOT_LEADER: grpc.status.UNAVAILABLE,
  INTERNAL: grpc.status.INTERNAL,
});

/** The reason string of an {@link ErrorReason} value (`ErrorReason.STALE_ROUND` → `"STALE_ROUND"`). */
export function reasonName(reason: ErrorReason): string {
  return ErrorReason[reason];
}

function encodeErrorInfo(info: ErrorInfo): Uint8Array {
  const w = new BinaryWriter();
  w.tag(1, WireType.LengthDelimited).string(info.reason);
  w.tag(2, WireType.LengthDelimited).string(info.domain);
  for (const [k, v] of Object.entries(info.metadata)) {
    w.tag(3, WireType.LengthDelimited)
      .fork()
      .tag(1, WireType.LengthDelimited)
      .string(k)
      .tag(2, WireType.LengthDelimited)
      .string(v)
      .join();
  }
  return w.finish();
}

function encodeBadRequest(violations: readonly FieldViolation[]): Uint8Array {
  const w = new BinaryWriter();
  for (const v of violations) {
    w.tag(1, WireType.LengthDelimited)
      .fork()
      .tag(1, WireType.LengthDelimited)
      .string(v.field)
      .tag(2, WireType.LengthDelimited)
      .string(v.description)
      .join();
  }
  return w.finish();
}

function writeAny(w: BinaryWriter, typeUrl: string, value: Uint8Array): void {
  w.tag(3, WireType.LengthDelimited)
    .fork()
    .tag(1, WireType.LengthDelimited)
    .string(typeUrl)
    .tag(2, WireType.LengthDelimited)
    .bytes(value)
    .join();
}

/**
 * Encodes a `google.rpc.Status` for the {@link STATUS_DETAILS_KEY} trailer.
 *
 * @example
 * metadata.set(STATUS_DETAILS_KEY, Buffer.from(encodeStatusDetails({ code: 9, message, errorInfo, fieldViolations: [] })));
 */
export function encodeStatusDetails(details: StatusDetails): Uint8Array {
  const w = new BinaryWriter();
  if (details.code !== 0) w.tag(1, WireType.Varint).int32(details.code);
  if (details.message !== "") w.tag(2, WireType.LengthDelimited).string(details.message);
  if (details.errorInfo !== undefined) writeAny(w, ERROR_INFO_TYPE, encodeErrorInfo(details.errorInfo));
  if (details.fieldViolations.length > 0) {
    writeAny(w, BAD_REQUEST_TYPE, encodeBadRequest(details.fieldViolations));
  }
  return w.finish();
}

/** Reads the fields of one message, calling `onField` for each; unknown fields are skipped. */
function readFields(
  bytes: Uint8Array,
  onField: (no: number, r: BinaryReader, type: WireType) => boolean,
): void {
  const r = new BinaryReader(bytes);
  while (r.pos < r.len) {
    const [no, type] = r.tag();
    if (!onField(no, r, type)) r.skip(type, no);
  }
}

function decodeErrorInfo(bytes: Uint8Array): ErrorInfo {
  let reason = "";
  let domain = "";
  const metadata: Record<string, string> = {};
  readFields(bytes, (no, r, type) => {
    if (type !== WireType.LengthDelimited) return false;
    if (no === 1) reason = r.string();
    else if (no === 2) domain = r.string();
    else if (no === 3) {
      let key = "";
      let value = "";
      readFields(r.bytes(), (n, rr, t) => {
        if (t !== WireType.LengthDelimited) return false;
        if (n === 1) key = rr.string();
        else if (n === 2) value = rr.string();
        else return false;
        return true;
      });
      metadata[key] = value;
    } else return false;
    return true;
  });
  return { reason, domain, metadata };
}

function decodeBadRequest(bytes: Uint8Array): FieldViolation[] {
  const out: FieldViolation[] = [];
  readFields(bytes, (no, r, type) => {
    if (no !== 1 || type !== WireType.LengthDelimited) return false;
    let field = "";
    let description = "";
    readFields(r.bytes(), (n, rr, t) => {
      if (t !== WireType.LengthDelimited) return false;
      if (n === 1) field = rr.string();
      else if (n === 2) description = rr.string();
      else return false;
      return true;
    });
    out.push({ field, description });
    return true;
  });
  return out;
}

/**
 * Decodes the {@link STATUS_DETAILS_KEY} trailer. Details of other types are
 * ignored; of several `ErrorInfo`s the first counts.
 *
 * @throws {Error} when `bytes` is not a protobuf message.
 * @example
 * const details = decodeStatusDetails(err.metadata.get(STATUS_DETAILS_KEY)[0] as Buffer);
 * if (details.errorInfo?.reason === "STALE_ROUND") ...
 */
export function decodeStatusDetails(bytes: Uint8Array): StatusDetails {
  let code = 0;
  let message = "";
  let errorInfo: ErrorInfo | undefined;
  const fieldViolations: FieldViolation[] = [];
  readFields(bytes, (no, r, type) => {
    if (no === 1 && type === WireType.Varint) code = r.int32();
    else if (no === 2 && type === WireType.LengthDelimited) message = r.string();
    else if (no === 3 && type === WireType.LengthDelimited) {
      let typeUrl = "";
      let value: Uint8Array = new Uint8Array(0);
      readFields(r.bytes(), (n, rr, t) => {
        if (t !== WireType.LengthDelimited) return false;
        if (n === 1) typeUrl = rr.string();
        else if (n === 2) value = rr.bytes();
        else return false;
        return true;
      });
      if (typeUrl === ERROR_INFO_TYPE) errorInfo ??= decodeErrorInfo(value);
      else if (typeUrl === BAD_REQUEST_TYPE) fieldViolations.push(...decodeBadRequest(value));
    } else return false;
    return true;
  });
  return { code, message, ...(errorInfo !== undefined ? { errorInfo } : {}), fieldViolations };
}

/** What {@link serviceError} builds an error from. */
export interface ErrorSpec {
  /** gRPC status code. */
  readonly code: grpc.status;
  /** For people. */
  readonly message: string;
  readonly reason: ErrorReason;
  readonly metadata?: Readonly<Record<string, string | number | undefined>>;
  readonly fieldViolations?: readonly FieldViolation[];
}

/**
 * A grpc-js error carrying {@link ErrorSpec} as a `google.rpc.Status` in the
 * {@link STATUS_DETAILS_KEY} trailer (metadata values with `undefined` are
 * left out; numbers are written in decimal).
 *
 * @example
 * callback(serviceError({ code: grpc.status.FAILED_PRECONDITION, message, reason: ErrorReason.STALE_ROUND, metadata: { round: 3 } }));
 */
export function serviceError(spec: ErrorSpec): grpc.ServiceError {
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(spec.metadata ?? {})) if (v !== undefined) metadata[k] = String(v);
  const trailer = new grpc.Metadata();
  trailer.set(
    STATUS_DETAILS_KEY,
    Buffer.from(
      encodeStatusDetails({
        code: spec.code,
        message: spec.message,
        errorInfo: { reason: reasonName(spec.reason), domain: ERROR_DOMAIN, metadata },
        fieldViolations: spec.fieldViolations ?? [],
      }),
    ),
  );
  return Object.assign(new Error(spec.message), {
    code: spec.code,
    details: spec.message,
    metadata: trailer,
  });
}

/**
 * The decoded details of a grpc-js error, `undefined` when it carries none (or
 * they are not a `google.rpc.Status`).
 *
 * @example
 * const reason = statusDetailsOf(err)?.errorInfo?.reason; // "STALE_ROUND"
 */
export function statusDetailsOf(err: { readonly metadata?: grpc.Metadata }): StatusDetails | undefined {
  const value = err.metadata?.get(STATUS_DETAILS_KEY)[0];
  if (!(value instanceof Uint8Array)) return undefined;
  try {
    return decodeStatusDetails(value);
  } catch {
    return undefined;
  }
}
