/**
 * What an update's header may hold, for both ends: the size of every field
 * and of the metrics map, and the one rule for content hashes (64 hex digits,
 * either case on the wire, lower case once read). The coordinator refuses a
 * header that breaks a limit before it reads anything else of the upload,
 * with `INVALID_ARGUMENT` naming the field and the limit; the SDKs check the
 * same before they send.
 */
import { idProblem, quoteValue } from "./ids.ts";

/** The documented limits of an update's header (`SubmitUpdateRequest.header`). */
export const UPDATE_HEADER_LIMITS = {
  /** Entries of `metrics`. */
  metrics: 64,
  /** Characters of a metric's name. */
  metricNameChars: 64,
  /** Bytes (UTF-8) of `adapter_config_json`. */
  adapterConfigJsonBytes: 64 * 1024,
} as const;

/** A metric's name: a letter, then letters, digits and `_ . / -` (at most 64 characters). */
export const METRIC_NAME = /^[A-Za-z][A-Za-z0-9_./-]{0,63}$/;

/** A SHA-256 content hash as 64 hex digits, either case. */
const CONTENT_HASH = /^[0-9a-fA-F]{64}$/;

/** `value` as a lower-case content hash, or `undefined` when it is not 64 hex digits. */
export function normalizeContentHash(value: unknown): string | undefined {
  return typeof value === "string" && CONTENT_HASH.test(value) ? value.toLowerCase() : undefined;
}

/** What is wrong with `value` as a content hash (naming `field`), or `undefined`. */
export function contentHashProblem(value: unknown, field = "content_hash"): string | undefined {
  return normalizeContentHash(value) === undefined
    ? `${field} ${quoteValue(value)} must be a SHA-256 as 64 hex digits`
    : undefined;
}

/** The header fields the limits look at (protobuf-es names). */
export interface HeaderFields {
  readonly federationId: string;
  readonly clientId: string;
  readonly updateId: string;
  readonly contentHash: string;
  readonly adapterConfigJson: string;
  readonly metrics: Readonly<Record<string, number>>;
}

/** A field at fault and what is wrong. */
export interface HeaderProblem {
  readonly field: string;
  readonly problem: string;
}

/**
 * The first limit `h` breaks, or `undefined`. Cheap whatever the input's
 * size: no field is copied or echoed beyond a short prefix.
 *
 * @example
 * const bad = updateHeaderProblem(header);
 * if (bad !== undefined) throw new Error(bad.problem);
 */
export function updateHeaderProblem(h: HeaderFields): HeaderProblem | undefined {
  const id = idProblem("federation_id", h.federationId);
  if (id !== undefined) return { field: "federation_id", problem: id };
  if (h.clientId !== "") {
    const client = idProblem("client_id", h.clientId);
    if (client !== undefined) return { field: "client_id", problem: client };
  }
  const update = idProblem("update_id", h.updateId);
  if (update !== undefined) return { field: "update_id", problem: update };
  const hash = contentHashProblem(h.contentHash);
  if (hash !== undefined) return { field: "content_hash", problem: hash };
  const configBytes = Buffer.byteLength(h.adapterConfigJson, "utf8");
  if (configBytes > UPDATE_HEADER_LIMITS.adapterConfigJsonBytes) {
    return {
      field: "adapter_config_json",
      problem: `adapter_config_json is ${configBytes} bytes, above the limit of ${UPDATE_HEADER_LIMITS.adapterConfigJsonBytes}`,
    };
  }
  const names = Object.keys(h.metrics);
  if (names.length > UPDATE_HEADER_LIMITS.metrics) {
    return {
      field: "metrics",
      problem: `metrics has ${names.length} entries, above the limit of ${UPDATE_HEADER_LIMITS.metrics}`,
    };
  }
  for (const name of names) {
    if (!METRIC_NAME.test(name)) {
      return {
        field: "metrics",
        problem: `metrics name ${quoteValue(name)} must be a letter, then up to 63 of A-Z a-z 0-9 _ . / -`,
      };
    }
    if (!Number.isFinite(h.metrics[name])) {
      return {
        field: "metrics",
        problem: `metric "${name}" is ${h.metrics[name]}, expected a finite number`,
      };
    }
  }
  return undefined;
}
