/**
 * Upload staging of the JetStream store. An upload's bytes are staged on its
 * own subject of the upload stream (see `stream-sink.ts`) until `commit`
 * reads them back in order, verifies size and sha256 while writing them as
 * the object `updates/<fed>/<round>/<client>/<update>` of the bucket, and
 * purges the subject. The update is *committed* then, and *accepted* once
 * its `update-accepted` event is journaled. As in the file store: one
 * partial per client and round, a round's partials go when it closes, and a
 * committed upload never journaled is deleted.
 */
import { createHash } from "node:crypto";
import type { CommittedUpload, ExpectedUpload, StoreState, UploadKey, UploadStatus } from "../core/store.ts";
import { StoreIntegrityError, UpdateConflictError } from "../core/store-errors.ts";
import { acceptedUpdate } from "../store/journal-state.ts";
import type { KeyedMutex } from "../store/keyed-mutex.ts";
import { checkExpected, checkId, checkUploadKey, slotKey, uploadId } from "../store/paths.ts";
import { createPendingCommits } from "../store/pending-commits.ts";
import { committedSink, type ManagedSink } from "../store/upload-sink.ts";
import type { Uploads } from "../store/uploads.ts";
import { type JetStreamNames, updateObject, uploadFilter, uploadOfSubject, uploadSubject } from "./names.ts";
import type { JetStreamHandles } from "./setup.ts";
import { readStream } from "./stream-reader.ts";
import { createStreamSink, OFFSET_HEADER } from "./stream-sink.ts";
import { retryTransient, TRANSIENT_BUDGET_MS } from "./transient.ts";

/** The JetStream uploads, plus what the store's reads need. */
export interface StreamUploads extends Uploads {
  /** The update committed in a client's slot (journaled, or awaiting its event), if any. */
  committed(
    federationId: string,
    round: number,
    clientId: string,
  ): { readonly updateId: string; readonly size: number; readonly sha256: string } | undefined;
}

/** Where an upload's staged bytes end: their count and the subject's last sequence. */
interface Staged {
  readonly bytes: number;
  readonly lastSeq: number;
}

/** Upload staging on `h`'s upload stream and bucket; `state` is the live journal state. */
export function createStreamUploads(
  h: JetStreamHandles,
  names: JetStreamNames,
  state: () => StoreState,
  locked: KeyedMutex,
): StreamUploads {
  const pending = createPendingCommits(state, (u) =>
    updateObject(u.federationId, u.round, u.clientId, u.updateId),
  );
  const active = new Map<string, ManagedSink>();

  const staged = async (subject: string): Promise<Staged> => {
    const last = await retryTransient(() =>
      h.jsm.streams.getMessage(names.uploadStream, { last_by_subj: subject }),
    );
    if (last === null) return { bytes: 0, lastSeq: 0 };
    const offset = Number(last.header.get(OFFSET_HEADER));
    return { bytes: offset + last.data.length, lastSeq: last.seq };
  };
  const purge = async (filter: string): Promise<void> => {
    await retryTransient(() => h.jsm.streams.purge(names.uploadStream, { filter }));
  };

  const stop = async (key: UploadKey): Promise<void> => {
    await active.get(uploadId(key))?.stop("superseded");
  };

  /** Reads the staged bytes of `subject` in order into object `location`; their size and sha256. */
  const copyToObject = async (
    subject: string,
    lastSeq: number,
    location: string,
  ): Promise<{ size: number; sha256: string }> => {
    const hash = createHash("sha256");
    let size = 0;
    const pieces = readStream(h.bulk.js, {
      stream: names.uploadStream,
      subject,
      fromSeq: 1,
      untilSeq: lastSeq,
    });
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        const next = await pieces.next();
        if (next.done === true) {
          controller.close();
          return;
        }
        hash.update(next.value.data);
        size += next.value.data.length;
        controller.enqueue(next.value.data);
      },
      async cancel() {
        await pieces.return(undefined);
      },
    });
    await h.objects.put({ name: location }, body);
    return { size, sha256: hash.digest("hex") };
  };

  /** Reads the staged bytes back in order, verifying them while they become the update's object. */
  const commit = async (
    key: UploadKey,
    expected: ExpectedUpload,
    lastSeq: number,
  ): Promise<CommittedUpload> => {
    const subject = uploadSubject(names, key);
    const slot = slotKey(key.federationId, key.round, key.clientId);
    return locked(`slot:${slot}`, async () => {
      const rec = acceptedUpdate(state(), key.federationId, key.round, key.clientId);
      const holder = rec?.updateId ?? pending.get(key)?.updateId;
      if (holder !== undefined && holder !== key.updateId) {
        throw new UpdateConflictError(
          key,
          `update "${holder}" is already ${rec ? "accepted" : "committed"} for this client and round`,
          holder,
        );
      }
      const location = updateObject(key.federationId, key.round, key.clientId, key.updateId);
      if (holder === undefined) {
        const { size, sha256 } = await retryTransient(
          () => copyToObject(subject, lastSeq, location),
          2 * TRANSIENT_BUDGET_MS,
        );
        const problem =
          size !== expected.size
            ? (["size-mismatch", `stored ${size} bytes, declared ${expected.size}`] as const)
            : sha256 !== expected.sha256
              ? ([
                  "sha256-mismatch",
                  `sha256 of the received bytes is ${sha256}, declared ${expected.sha256}`,
                ] as const)
              : undefined;
        if (problem !== undefined) {
          await retryTransient(() => h.objects.delete(location));
          await purge(subject);
          throw new StoreIntegrityError(
            problem[0],
            key,
            `${problem[1]}; the partial upload was deleted, resend it`,
          );
        }
        pending.set(key, { updateId: key.updateId, location, ...expected });
      }
      await purge(subject);
      return { location, size: expected.size, sha256: expected.sha256 };
    });
  };

  /** One partial per client and round: starting `key` stops and deletes the client's other partials in the round. */
  const dropOtherPartials = async (key: UploadKey): Promise<void> => {
    const own = uploadSubject(names, key);
    const info = await retryTransient(() =>
      h.jsm.streams.info(names.uploadStream, {
        subjects_filter: uploadFilter(names, key.federationId, key.round, key.clientId),
      }),
    );
    for (const subject of Object.keys(info.state.subjects ?? {})) {
      if (subject === own) continue;
      const other = uploadOfSubject(names, subject);
      if (other !== undefined) await stop(other);
      await purge(subject);
    }
  };

  return {
    begin: async (key, expected) =>
      locked(`upload:${uploadId(checkUploadKey(key))}`, async () => {
        checkExpected(expected);
        const done = pending.stored(key, expected);
        if (done !== undefined) return committedSink(key, expected, done);
        await stop(key);
        return locked(`client:${slotKey(key.federationId, key.round, key.clientId)}`, async () => {
          await dropOtherPartials(key);
          const subject = uploadSubject(names, key);
          let at = await staged(subject);
          if (at.bytes > expected.size) {
            // Left by different content under the same id: start over.
            await purge(subject);
            at = { bytes: 0, lastSeq: at.lastSeq };
          }
          const id = uploadId(key);
          const sink: ManagedSink = createStreamSink({
            h,
            key,
            expected,
            subject,
            offset: at.bytes,
            lastSeq: at.bytes === 0 ? 0 : at.lastSeq,
            hooks: {
              commit: (lastSeq) => commit(key, expected, lastSeq),
              discard: () => purge(subject),
              release: () => {
                if (active.get(id) === sink) active.delete(id);
              },
            },
          });
          active.set(id, sink);
          return sink;
        });
      }),
    status: async (key) =>
      locked(`upload:${uploadId(checkUploadKey(key))}`, async (): Promise<UploadStatus> => {
        const done = pending.stored(key);
        if (done !== undefined) {
          const journaled = acceptedUpdate(state(), key.federationId, key.round, key.clientId);
          return { state: journaled ? "accepted" : "committed", bytes: done.size };
        }
        const { bytes, lastSeq } = await staged(uploadSubject(names, key));
        return lastSeq === 0 ? { state: "none", bytes: 0 } : { state: "partial", bytes };
      }),
    discard: async (key) =>
      locked(`upload:${uploadId(checkUploadKey(key))}`, async () => {
        await stop(key);
        const subject = uploadSubject(names, key);
        let removed = (await staged(subject)).lastSeq !== 0;
        await purge(subject);
        const slot = slotKey(key.federationId, key.round, key.clientId);
        const p = pending.get(key);
        if (p?.updateId === key.updateId) {
          await locked(`slot:${slot}`, async () => {
            await retryTransient(() => h.objects.delete(p.location));
            pending.delete(key);
            removed = true;
          });
        }
        return removed;
      }),
    async discardRound(federationId, round) {
      checkId("federation_id", federationId);
      let stopped = 0;
      for (const [id, sink] of [...active]) {
        if (sink.key.federationId === federationId && sink.key.round === round) {
          await sink.stop("round-closed");
          active.delete(id);
          stopped++;
        }
      }
      await purge(uploadFilter(names, federationId, round));
      return stopped;
    },
    checkCommitted: (u) => pending.checkCommitted(u),
    journaled: (u) => pending.journaled(u),
    async closeAll() {
      await Promise.all([...active.values()].map((s) => s.stop("store-closed")));
    },
    committed(federationId, round, clientId) {
      return (
        acceptedUpdate(state(), federationId, round, clientId) ??
        pending.get({ federationId, round, clientId })
      );
    },
  };
}
