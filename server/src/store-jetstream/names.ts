/**
 * Where the JetStream store keeps things: one stream for the journal, one
 * for staged upload bytes, one object store bucket for committed updates and
 * merged adapters. Ids become subject tokens hex-encoded (client and update
 * ids may hold `.`, a subject separator), so filters can still select a
 * round's or a client's uploads.
 */
import type { UploadKey } from "../core/store.ts";

/** Names of the streams and bucket of a JetStream store (one set per deployment). */
export interface JetStreamNames {
  /** The journal stream (default `TRIBUTARY_JOURNAL`). */
  readonly journalStream: string;
  /** Its one subject (default `tributary.journal`). */
  readonly journalSubject: string;
  /** The stream of staged upload bytes (default `TRIBUTARY_UPLOADS`). */
  readonly uploadStream: string;
  /** Prefix of its subjects (default `tributary.upload`). */
  readonly uploadPrefix: string;
  /** The object store bucket of committed updates and merged adapters (default `tributary-store`). */
  readonly bucket: string;
}

/** The default names. */
export const DEFAULT_JETSTREAM_NAMES: JetStreamNames = {
  journalStream: "TRIBUTARY_JOURNAL",
  journalSubject: "tributary.journal",
  uploadStream: "TRIBUTARY_UPLOADS",
  uploadPrefix: "tributary.upload",
  bucket: "tributary-store",
};

const hex = (id: string): string => Buffer.from(id, "utf8").toString("hex");

/** The subject an upload's bytes are staged on: `<prefix>.<fed>.<round>.<client>.<update>`. */
export function uploadSubject(names: JetStreamNames, key: UploadKey): string {
  return `${names.uploadPrefix}.${hex(key.federationId)}.${key.round}.${hex(key.clientId)}.${hex(key.updateId)}`;
}

/** A filter matching every upload of a round, or of one client in it. */
export function uploadFilter(
  names: JetStreamNames,
  federationId: string,
  round: number,
  clientId?: string,
): string {
  const base = `${names.uploadPrefix}.${hex(federationId)}.${round}`;
  return clientId === undefined ? `${base}.>` : `${base}.${hex(clientId)}.*`;
}

const unhex = (token: string): string => Buffer.from(token, "hex").toString("utf8");

/** The upload an upload subject stages (the inverse of {@link uploadSubject}), or `undefined` for another subject. */
export function uploadOfSubject(names: JetStreamNames, subject: string): UploadKey | undefined {
  if (!subject.startsWith(`${names.uploadPrefix}.`)) return undefined;
  const parts = subject.slice(names.uploadPrefix.length + 1).split(".");
  if (parts.length !== 4) return undefined;
  return {
    federationId: unhex(parts[0]),
    round: Number(parts[1]),
    clientId: unhex(parts[2]),
    updateId: unhex(parts[3]),
  };
}

/** Object name of a client's committed update `updateId` of a round. */
export function updateObject(
  federationId: string,
  round: number,
  clientId: string,
  updateId: string,
): string {
  return `updates/${federationId}/${round}/${clientId}/${updateId}`;
}

/** Object names of a merged adapter's safetensors and config. */
export function adapterObjects(contentHash: string): {
  readonly safetensors: string;
  readonly config: string;
} {
  return { safetensors: `adapters/${contentHash}/model`, config: `adapters/${contentHash}/config` };
}

/** Object name of a round's result record. */
export function roundObject(federationId: string, round: number): string {
  return `rounds/${federationId}/${round}`;
}
