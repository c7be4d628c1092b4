/**
 * Committed uploads awaiting their `update-accepted` event, one per client
 * slot of a round, and the checks both stores' upload staging make against
 * them and the journal: what a slot holds, and whether an event names the
 * committed bytes.
 */
import type { UpdateRecord } from "../core/model.ts";
import type { CommittedUpload, ExpectedUpload, StoreState, UploadKey } from "../core/store.ts";
import { StoreIntegrityError, UpdateConflictError } from "../core/store-errors.ts";
import { acceptedUpdate } from "./journal-state.ts";
import { slotKey } from "./paths.ts";

/** A committed upload awaiting its journal event. */
export interface Pending extends CommittedUpload {
  readonly updateId: string;
}

/** The pending commits of a store (see the module comment). */
export interface PendingCommits {
  /** What is committed, not journaled, in the key's slot. */
  get(key: Pick<UploadKey, "federationId" | "round" | "clientId">): Pending | undefined;
  set(key: Pick<UploadKey, "federationId" | "round" | "clientId">, pending: Pending): void;
  delete(key: Pick<UploadKey, "federationId" | "round" | "clientId">): void;
  /**
   * The stored upload of the key's slot if it is this update (accepted or
   * pending); `undefined` if the slot holds nothing, or a pending other
   * update (`commit` decides). Throws `UpdateConflictError` if another update
   * is accepted, or this one is stored with other content than `expected`.
   */
  stored(key: UploadKey, expected?: ExpectedUpload): CommittedUpload | undefined;
  /** Throws `StoreIntegrityError("not-committed")` unless `update` describes the committed, unjournaled upload of its slot. */
  checkCommitted(update: UpdateRecord): void;
  /** Forgets the pending commit of a slot once its event is journaled. */
  journaled(update: UpdateRecord): void;
}

/**
 * Pending commits over the live journal `state`; `location` says where an
 * accepted update's bytes are.
 *
 * @example
 * const pending = createPendingCommits(() => journal.state, (u) => acceptedPath(u));
 */
export function createPendingCommits(
  state: () => StoreState,
  location: (update: UpdateRecord) => string,
): PendingCommits {
  const slots = new Map<string, Pending>();
  const slot = (k: Pick<UploadKey, "federationId" | "round" | "clientId">) =>
    slotKey(k.federationId, k.round, k.clientId);
  return {
    get: (k) => slots.get(slot(k)),
    set: (k, p) => void slots.set(slot(k), p),
    delete: (k) => void slots.delete(slot(k)),
    stored(key, expected) {
      const rec = acceptedUpdate(state(), key.federationId, key.round, key.clientId);
      const have: Pending | undefined =
        rec !== undefined ? { ...rec, location: location(rec) } : slots.get(slot(key));
      if (have === undefined) return undefined;
      if (have.updateId !== key.updateId) {
        if (rec === undefined) return undefined; // committed but not journaled: `commit` decides
        throw new UpdateConflictError(key, `update "${rec.updateId}" is already accepted`, rec.updateId);
      }
      if (expected !== undefined && (have.sha256 !== expected.sha256 || have.size !== expected.size)) {
        throw new UpdateConflictError(
          key,
          `already stored with ${have.size} bytes sha256 ${have.sha256}, not ${expected.size} bytes sha256 ${expected.sha256}`,
          have.updateId,
        );
      }
      return { location: have.location, size: have.size, sha256: have.sha256 };
    },
    checkCommitted(u) {
      const p = slots.get(slot(u));
      if (p === undefined || p.updateId !== u.updateId || p.sha256 !== u.sha256 || p.size !== u.size) {
        throw new StoreIntegrityError(
          "not-committed",
          u,
          p === undefined
            ? "no committed upload for this client and round; commit the upload before journaling it"
            : `the committed upload is update "${p.updateId}" (${p.size} bytes, sha256 ${p.sha256}), not ${u.size} bytes sha256 ${u.sha256}`,
        );
      }
    },
    journaled: (u) => void slots.delete(slot(u)),
  };
}
