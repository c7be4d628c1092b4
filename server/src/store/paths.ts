/**
 * Layout of the file store's data directory, and validation of everything
 * that becomes a path component (no traversal, no surprises):
 *
 * ```
 * <dataDir>/LOCK                                         pid of the owning process
 * <dataDir>/journal.jsonl                                one JSON event per line
 * <dataDir>/uploads/<fed>/<round>/<client>/<update>.partial   bytes received so far
 * <dataDir>/updates/<fed>/<round>/<client>.safetensors   committed updates
 * <dataDir>/adapters/<sha256>/adapter_config.json, adapter_model.safetensors
 * <dataDir>/rounds/<fed>/<round>.json                    the round's merged adapter hash
 * ```
 *
 * Temporary names contain `+`, which ids cannot, so they never collide.
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { type IdKind, idProblem } from "@tributary/protocol";
import type { UploadKey } from "../core/store.ts";
import { StoreArgumentError } from "../core/store-errors.ts";

const SHA256_PATTERN = /^[0-9a-f]{64}$/;

/** Returns `value` if it is a valid id of its kind (`@tributary/protocol`'s `ID_RULES`), else throws `StoreArgumentError`. */
export function checkId(kind: IdKind, value: unknown): string {
  const problem = idProblem(kind, value);
  if (problem !== undefined) throw new StoreArgumentError(`invalid ${problem}`);
  return value as string;
}

/** Returns `value` if it is a round number (a positive safe integer), else throws `StoreArgumentError`. */
export function checkRound(value: unknown): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1) {
    throw new StoreArgumentError(`invalid round ${JSON.stringify(value)}: rounds are integers ≥ 1`);
  }
  return value;
}

/** Returns `value` if it is a lower-case hex sha256, else throws `StoreArgumentError`. */
export function checkSha256(kind: string, value: unknown): string {
  if (typeof value !== "string" || !SHA256_PATTERN.test(value)) {
    throw new StoreArgumentError(
      `invalid ${kind} ${JSON.stringify(value)}: expected 64 lower-case hex digits`,
    );
  }
  return value;
}

/** Validates every component of an upload key. */
export function checkUploadKey(key: UploadKey): UploadKey {
  checkId("federation_id", key.federationId);
  checkRound(key.round);
  checkId("client_id", key.clientId);
  checkId("update_id", key.updateId);
  return key;
}

/** `fed/round/client`: one client's slot in a round. */
export function slotKey(federationId: string, round: number, clientId: string): string {
  return `${federationId}/${round}/${clientId}`;
}

/** `fed/round/client/update`: one upload, as both stores key their running sinks and locks. */
export function uploadId(key: UploadKey): string {
  return `${slotKey(key.federationId, key.round, key.clientId)}/${key.updateId}`;
}

/** Throws `StoreArgumentError` unless `expected` is a lower-case hex sha256 and a byte count. */
export function checkExpected(expected: { readonly size: unknown; readonly sha256: unknown }): void {
  checkSha256("sha256", expected.sha256);
  if (!Number.isSafeInteger(expected.size) || (expected.size as number) < 0) {
    throw new StoreArgumentError(`invalid size ${JSON.stringify(expected.size)}: expected a byte count`);
  }
}

/** A unique temporary name next to `name`. */
export function tempName(name: string): string {
  return `${name}+${randomBytes(6).toString("hex")}.tmp`;
}

/** Paths of a data directory. */
export interface StoreLayout {
  readonly root: string;
  readonly lock: string;
  readonly journal: string;
  readonly uploads: string;
  readonly updates: string;
  readonly adapters: string;
  readonly rounds: string;
  /** Path components of an upload's directory under `root`, and the partial's file name. */
  partial(key: UploadKey): { readonly dirs: string[]; readonly file: string };
  /** Path components of a slot's accepted-update directory under `root`, and the file name. */
  update(
    federationId: string,
    round: number,
    clientId: string,
  ): { readonly dirs: string[]; readonly file: string };
  /** Directory of a content hash. */
  adapter(hash: string): string;
  /** Path components of a round record's directory under `root`, and its file name. */
  round(federationId: string, round: number): { readonly dirs: string[]; readonly file: string };
}

/** The layout of data directory `root`; every method validates its arguments. */
export function storeLayout(root: string): StoreLayout {
  return {
    root,
    lock: join(root, "LOCK"),
    journal: join(root, "journal.jsonl"),
    uploads: join(root, "uploads"),
    updates: join(root, "updates"),
    adapters: join(root, "adapters"),
    rounds: join(root, "rounds"),
    partial(key) {
      checkUploadKey(key);
      return {
        dirs: ["uploads", key.federationId, String(key.round), key.clientId],
        file: `${key.updateId}.partial`,
      };
    },
    update(federationId, round, clientId) {
      checkId("federation_id", federationId);
      checkRound(round);
      checkId("client_id", clientId);
      return { dirs: ["updates", federationId, String(round)], file: `${clientId}.safetensors` };
    },
    adapter(hash) {
      return join(root, "adapters", checkSha256("content hash", hash));
    },
    round(federationId, round) {
      checkId("federation_id", federationId);
      checkRound(round);
      return { dirs: ["rounds", federationId], file: `${round}.json` };
    },
  };
}
