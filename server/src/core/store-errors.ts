/**
 * Typed errors of the coordinator store port (`store.ts`), which every
 * implementation throws. Those a client can act on are `DomainError`s that
 * declare their status and reason: `StoreIntegrityError` → `INVALID_ARGUMENT`
 * `CONTENT_MISMATCH` (the client resends), `UpdateConflictError` →
 * `ALREADY_EXISTS` `UPDATE_CONFLICT`, `StoreArgumentError` →
 * `INVALID_ARGUMENT`; the others are the coordinator's problem (`INTERNAL`).
 */
import { ErrorReason } from "@tributary/protocol";
import { DomainError, type ErrorDetail, violationOf } from "./errors.ts";
import type { UploadKey } from "./store.ts";

/** `federation "f" round 3 client "c" update "u"`, for messages. */
export function describeUpload(key: Partial<UploadKey>): string {
  const parts: string[] = [];
  if (key.federationId !== undefined) parts.push(`federation "${key.federationId}"`);
  if (key.round !== undefined) parts.push(`round ${key.round}`);
  if (key.clientId !== undefined) parts.push(`client "${key.clientId}"`);
  if (key.updateId !== undefined) parts.push(`update "${key.updateId}"`);
  return parts.join(" ");
}

/** Why received or stored bytes were refused. */
export type IntegrityReason =
  /** A write would go past the declared size; nothing was written. */
  | "size-overrun"
  /** `commit()` before all declared bytes arrived; the partial is kept. */
  | "incomplete"
  /** The durable file's size is not the declared size; the partial was deleted. */
  | "size-mismatch"
  /** The durable file's sha256 is not the declared one; the partial was deleted. */
  | "sha256-mismatch"
  /** An `update-accepted` event names bytes that were never committed. */
  | "not-committed"
  /** A content hash already stored with a different `adapter_config.json`. */
  | "adapter-conflict"
  /** A round already has a different merged adapter (a round is merged once). */
  | "round-result-conflict";

/**
 * Bytes that are not what was declared (size, sha256), or a store operation
 * that would break an invariant about stored bytes.
 *
 * @example
 * throw new StoreIntegrityError("sha256-mismatch", key, `sha256 is ${got}, declared ${want}`);
 */
export class StoreIntegrityError extends DomainError {
  override readonly name = "StoreIntegrityError";
  readonly code = "invalid-argument";
  constructor(
    /** What was wrong. */
    readonly reason: IntegrityReason,
    /** The upload (or the part of it known) the problem is about. */
    readonly key: Partial<UploadKey>,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(`${describeUpload(key)}: ${detail}`, options);
  }
  detail(): ErrorDetail {
    const field =
      this.reason === "sha256-mismatch"
        ? "content_hash"
        : this.reason.startsWith("size")
          ? "total_size"
          : undefined;
    return {
      reason: ErrorReason.CONTENT_MISMATCH,
      metadata: { field },
      ...(field !== undefined ? { fieldViolations: violationOf(`header.${field}`, this) } : {}),
    };
  }
}

/**
 * Stored state that cannot be trusted: a journal line that is not a valid
 * event in the middle of the journal, an event that contradicts the replayed
 * state, an accepted update whose file is missing.
 */
export class StoreCorruptError extends Error {
  override readonly name = "StoreCorruptError";
  constructor(
    message: string,
    /** The file that is corrupt. */
    readonly file: string,
    /** 1-based line of the journal, when the problem is a journal line. */
    readonly line?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * A second, different update for a client and round that already has one
 * (accepted, or committed and awaiting its journal event), the same update id
 * with different content, or an upload superseded by a newer one of the same
 * key. The first update stands; resubmitting it with its own `update_id` is
 * idempotent. Raised by intake and by the store alike. → `ALREADY_EXISTS`.
 */
export class UpdateConflictError extends DomainError {
  override readonly name = "UpdateConflictError";
  readonly code = "already-exists";
  constructor(
    /** The upload that was refused. */
    readonly key: UploadKey,
    detail: string,
    /** Update id of the update already stored for the client and round, if any. */
    readonly existingUpdateId?: string,
    options?: { cause?: unknown; plain?: boolean },
  ) {
    super(options?.plain === true ? detail : `${describeUpload(key)}: ${detail}`, options);
  }
  detail(): ErrorDetail {
    return {
      reason: ErrorReason.UPDATE_CONFLICT,
      metadata: { round: this.key.round, existing_update_id: this.existingUpdateId },
    };
  }
}

/** An id, round number, size or hash the store cannot accept (bad characters, path traversal). */
export class StoreArgumentError extends DomainError {
  override readonly name = "StoreArgumentError";
  readonly code = "invalid-argument";
  detail(): ErrorDetail {
    return { reason: ErrorReason.INVALID_REQUEST };
  }
}

/**
 * An event that does not fit the journaled state: unknown federation, round
 * or client, a duplicate, a sequence gap. Thrown by `append` before anything
 * is written; during replay it is the `cause` of a `StoreCorruptError`.
 */
export class JournalEventError extends Error {
  override readonly name = "JournalEventError";
}

/**
 * The store stopped an upload before the client finished it, for `reason`:
 * its round stopped accepting updates (`discardRoundUploads`: intake answers
 * the stale-round status), or the store is closing. An upload replaced by a
 * newer one of the same key is an `UpdateConflictError` instead.
 */
export class UploadStoppedError extends Error {
  override readonly name = "UploadStoppedError";
  constructor(
    /** The upload that was stopped. */
    readonly key: UploadKey,
    readonly reason: "round-closed" | "store-closed",
  ) {
    super(
      `${describeUpload(key)}: ${reason === "round-closed" ? "the round stopped accepting updates" : "the store is closing"}`,
    );
  }
}

/**
 * The store did not answer in time: a replicated store's cluster lost a node
 * or is electing a leader, and kept doing so past the store's retry budget.
 * Nothing of the operation is acknowledged. → `UNAVAILABLE` `STORE_UNAVAILABLE`.
 */
export class StoreUnavailableError extends DomainError {
  override readonly name = "StoreUnavailableError";
  readonly code = "unavailable";
  detail(): ErrorDetail {
    return { reason: ErrorReason.STORE_UNAVAILABLE };
  }
}

/** The data directory is held by another live process (or another open store in this one). */
export class StoreLockedError extends Error {
  override readonly name = "StoreLockedError";
  constructor(
    message: string,
    /** Pid recorded in the lock file. */
    readonly pid: number,
  ) {
    super(message);
  }
}

/**
 * An upload whose declared size does not fit in the free space left once the
 * uploads already admitted are counted: refused before any byte is stored, so
 * those admitted finish. → `RESOURCE_EXHAUSTED` `STORAGE_FULL`.
 */
export class StorageFullError extends DomainError {
  override readonly name = "StorageFullError";
  readonly code = "resource-exhausted";
  constructor(
    readonly key: UploadKey,
    /** Bytes the upload still needs. */
    readonly needed: number,
    /** Free bytes left for it. */
    readonly free: number,
  ) {
    super(
      `${describeUpload(key)}: needs ${needed} more bytes, and the coordinator's storage has ${Math.max(0, free)} free once the uploads under way are counted; retry later`,
    );
  }
  detail(): ErrorDetail {
    return { reason: ErrorReason.STORAGE_FULL, metadata: { needed: this.needed } };
  }
}
