/**
 * The round-result announcement published on NATS, where its adapter lives
 * in the object store, and the checks both ends apply to it.
 *
 * Layout: the adapter of a round is stored as two objects of the bucket,
 * `<federationId>/round-<n>/<contentHash>/adapter_model.safetensors` and
 * `<federationId>/round-<n>/<contentHash>/adapter_config.json` (the PEFT
 * file names, so a client can write them to a directory as they are). The
 * announcement (`RoundResult` + `bucket` + `objects`) is a JSON message on
 * `<subjectPrefix>.<federationId>` in the `TRIBUTARY_ROUNDS` stream.
 */
import { createHash } from "node:crypto";

/** An announcement is not a well-formed {@link RoundAnnouncement}, or a name cannot be used in one. */
export class AnnouncementFormatError extends Error {
  override readonly name = "AnnouncementFormatError";
}

/** What the coordinator announces about a merged round (the fields of its result). */
export interface AnnouncedResult {
  readonly federationId: string;
  readonly round: number;
  /** Hex sha256 (64 lower-case digits) of the merged `adapter_model.safetensors`. */
  readonly contentHash: string;
  /** Bytes of the merged `adapter_model.safetensors`. */
  readonly size: number;
  /** Merge method name, e.g. `from`, `fedavg`. */
  readonly method: string;
  /** Client ids merged, in merge order. */
  readonly clients: readonly string[];
  /** Each client's merge weight, in the order of `clients`. */
  readonly weights: readonly number[];
  /** Milliseconds since the epoch. */
  readonly mergedAt: number;
  /**
   * The merged adapter truncated exactly to each smaller rank its clients
   * train at (FlexLoRA's distribution), ascending by rank; absent when every
   * client trains at the merged adapter's rank.
   */
  readonly rankVariants?: readonly AdapterRankVariant[];
  /** With `rankVariants`: the merged adapter's own rank (its largest module rank). */
  readonly mergedRank?: number;
}

/** A round's merged adapter truncated exactly (by SVD) to a client's rank. */
export interface AdapterRankVariant {
  /** Its rank: every module truncated to at most this. */
  readonly rank: number;
  /** Hex sha256 of its `adapter_model.safetensors`. */
  readonly contentHash: string;
  /** Bytes of its `adapter_model.safetensors`. */
  readonly size: number;
}

/**
 * Which adapter of a result a client training at `rank` receives: the rank
 * variant of that rank, or the merged adapter itself for `rank` 0 or
 * undefined (the whole adapter), for a rank no smaller than the merged
 * adapter's (`mergedRank`), or for a result without variants. `undefined` when the result
 * has variants but none of `rank`: the coordinator made one for each rank
 * its merged clients submitted at.
 *
 * @example
 * const pick = adapterForRank(announcement, 4) ?? announcement;
 */
export function adapterForRank(
  result: Pick<AnnouncedResult, "contentHash" | "size" | "rankVariants" | "mergedRank">,
  rank: number | undefined,
): { readonly contentHash: string; readonly size: number; readonly rank?: number } | undefined {
  const variants = result.rankVariants ?? [];
  if (rank === undefined || rank === 0 || variants.length === 0) return result;
  const hit = variants.find((v) => v.rank === rank);
  if (hit !== undefined) return hit;
  const merged = result.mergedRank ?? Math.max(...variants.map((v) => v.rank)) + 1;
  return rank >= merged ? result : undefined;
}

/** Default object store bucket of merged adapters. */
export const DEFAULT_BUCKET = "tributary-adapters";
/** Default subject prefix; announcements go to `<prefix>.<federationId>`. */
export const DEFAULT_SUBJECT_PREFIX = "tributary.rounds";
/** Default JetStream stream capturing `<prefix>.>`. */
export const DEFAULT_STREAM = "TRIBUTARY_ROUNDS";
/** File names of the two objects of an adapter (PEFT's names). */
export const ADAPTER_FILES = {
  safetensors: "adapter_model.safetensors",
  config: "adapter_config.json",
} as const;

/** Object names of one adapter in the bucket. */
export interface AdapterObjects {
  readonly safetensors: string;
  readonly config: string;
}

/** What is published for a round: the result, plus where its adapter (and each rank variant) is stored. */
export interface RoundAnnouncement extends Omit<AnnouncedResult, "rankVariants"> {
  /** Object store bucket holding the adapter. */
  readonly bucket: string;
  readonly objects: AdapterObjects;
  /** The rank variants (see `AnnouncedResult.rankVariants`), each with its objects in the same bucket. */
  readonly rankVariants?: readonly (AdapterRankVariant & { readonly objects: AdapterObjects })[];
}

/** A round's merged adapter: PEFT `adapter_config.json` text and safetensors bytes. */
export interface ResultAdapter {
  readonly configJson: string;
  readonly safetensors: Uint8Array;
}

const TOKEN = /^[^\s.*>]+$/;
const HEX64 = /^[0-9a-f]{64}$/;

/** Hex sha256 of `bytes`. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** The digest string the object store records for `bytes` (`SHA-256=` + padded base64url). */
export function objectStoreDigest(bytes: Uint8Array): string {
  const b64 = createHash("sha256").update(bytes).digest("base64");
  return `SHA-256=${b64.replaceAll("+", "-").replaceAll("/", "_")}`;
}

/** Whether `id` can be a NATS subject token (non-empty; no `.`, `*`, `>` or whitespace). */
export function isSubjectToken(id: string): boolean {
  return TOKEN.test(id);
}

/**
 * Checks that a federation id can be a subject token.
 *
 * @throws {AnnouncementFormatError} otherwise.
 */
export function checkSubjectToken(federationId: string): void {
  if (!isSubjectToken(federationId)) {
    throw new AnnouncementFormatError(`federation id "${federationId}" cannot be a NATS subject token`);
  }
}

/** `<subjectPrefix>.<federationId>`. */
export function announcementSubject(subjectPrefix: string, federationId: string): string {
  checkSubjectToken(federationId);
  return `${subjectPrefix}.${federationId}`;
}

/** Object names of a result's adapter. */
export function adapterObjects(
  result: Pick<AnnouncedResult, "federationId" | "round" | "contentHash">,
): AdapterObjects {
  const prefix = `${result.federationId}/round-${result.round}/${result.contentHash}`;
  return {
    safetensors: `${prefix}/${ADAPTER_FILES.safetensors}`,
    config: `${prefix}/${ADAPTER_FILES.config}`,
  };
}

/** The announcement of `result` stored in `bucket` (only the `RoundResult` fields are copied). */
export function toAnnouncement(result: AnnouncedResult, bucket: string): RoundAnnouncement {
  const { federationId, round, contentHash, size, method, clients, weights, mergedAt } = result;
  return {
    federationId,
    round,
    contentHash,
    size,
    method,
    clients,
    weights,
    mergedAt,
    bucket,
    objects: adapterObjects(result),
    ...(result.mergedRank !== undefined ? { mergedRank: result.mergedRank } : {}),
    ...(result.rankVariants !== undefined && result.rankVariants.length > 0
      ? {
          rankVariants: result.rankVariants.map((v) => ({
            rank: v.rank,
            contentHash: v.contentHash,
            size: v.size,
            objects: adapterObjects({ federationId, round, contentHash: v.contentHash }),
          })),
        }
      : {}),
  };
}

type Json = Record<string, unknown>;

function field<T>(doc: Json, key: string, ok: (v: unknown) => v is T, what: string): T {
  const value = doc[key];
  if (!ok(value)) throw new AnnouncementFormatError(`announcement: "${key}" must be ${what}`);
  return value;
}

const isString = (v: unknown): v is string => typeof v === "string" && v.length > 0;
const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isNumber = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
const isHash = (v: unknown): v is string => typeof v === "string" && HEX64.test(v);
const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every(isString);
const isNumbers = (v: unknown): v is number[] => Array.isArray(v) && v.every(isNumber);
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Validates a decoded announcement message.
 *
 * @throws {AnnouncementFormatError} naming the first bad field.
 */
export function parseAnnouncement(doc: unknown): RoundAnnouncement {
  if (!isObject(doc)) throw new AnnouncementFormatError("announcement: not a JSON object");
  const objects = field(doc, "objects", isObject, "an object");
  return {
    federationId: field(doc, "federationId", isString, "a non-empty string"),
    round: field(doc, "round", isCount, "a non-negative integer"),
    contentHash: field(doc, "contentHash", isHash, "a hex sha256"),
    size: field(doc, "size", isCount, "a non-negative integer"),
    method: field(doc, "method", isString, "a non-empty string"),
    clients: field(doc, "clients", isStrings, "an array of strings"),
    weights: field(doc, "weights", isNumbers, "an array of numbers"),
    mergedAt: field(doc, "mergedAt", isNumber, "a number"),
    bucket: field(doc, "bucket", isString, "a non-empty string"),
    objects: parseObjects(objects),
    ...(doc.rankVariants !== undefined ? { rankVariants: parseVariants(doc.rankVariants) } : {}),
    ...(doc.mergedRank !== undefined
      ? { mergedRank: field(doc, "mergedRank", isCount, "a non-negative integer") }
      : {}),
  };
}

function parseObjects(objects: Json): AdapterObjects {
  return {
    safetensors: field(objects, "safetensors", isString, "a non-empty string"),
    config: field(objects, "config", isString, "a non-empty string"),
  };
}

function parseVariants(value: unknown): (AdapterRankVariant & { objects: AdapterObjects })[] {
  if (!Array.isArray(value))
    throw new AnnouncementFormatError('announcement: "rankVariants" must be an array');
  return value.map((v) => {
    if (!isObject(v))
      throw new AnnouncementFormatError('announcement: "rankVariants" entries must be objects');
    const rank = field(v, "rank", isCount, "a non-negative integer");
    if (rank < 1) throw new AnnouncementFormatError('announcement: "rankVariants" ranks must be ≥ 1');
    return {
      rank,
      contentHash: field(v, "contentHash", isHash, "a hex sha256"),
      size: field(v, "size", isCount, "a non-negative integer"),
      objects: parseObjects(field(v, "objects", isObject, "an object")),
    };
  });
}
