/**
 * What the JetStream store does at open, after replaying the journal, as the
 * file store does (`store/recovery.ts`): delete committed update objects
 * whose `update-accepted` event was never journaled, staged bytes of rounds
 * that are no longer open, merged adapters no round references; and check
 * that every journaled update's object is there. Only one coordinator may
 * open the store while it recovers (several coordinators at once: [K]'s
 * leader election).
 */
import { roundEntry, type StoreState } from "../core/store.ts";
import { StoreCorruptError } from "../core/store-errors.ts";
import type { RecoveryReport } from "../store/recovery.ts";
import { adapterObjects, type JetStreamNames, roundObject, updateObject, uploadOfSubject } from "./names.ts";
import { readObject } from "./object-cache.ts";
import type { JetStreamHandles } from "./setup.ts";
import { retryTransient } from "./transient.ts";

const decoder = new TextDecoder();

/**
 * Cleans up the streams and the bucket against `state`.
 *
 * @example
 * const report = await recoverStreams(handles, names, journal.state);
 */
export async function recoverStreams(
  h: JetStreamHandles,
  names: JetStreamNames,
  state: StoreState,
): Promise<RecoveryReport> {
  let unjournaledUpdates = 0;
  let staleUploadRounds = 0;
  let unreferencedAdapters = 0;
  const objects = await retryTransient(() => h.objects.list());
  const present = new Set(objects.filter((o) => !o.deleted).map((o) => o.name));
  const referenced = new Set<string>();
  for (const entry of state.federations.values()) {
    for (const [n, round] of entry.rounds) {
      if (round.record.resultHash !== undefined) referenced.add(round.record.resultHash);
      else if (present.has(roundObject(entry.federation.id, n))) {
        // Stored by a merge the journal does not know of yet: its adapter stays, to be reused.
        const record = await readObject(h, names.bucket, roundObject(entry.federation.id, n));
        const hash =
          record === null
            ? undefined
            : (JSON.parse(decoder.decode(record)) as { contentHash?: string }).contentHash;
        if (hash !== undefined) referenced.add(hash);
      }
      for (const u of round.updates.values()) {
        const name = updateObject(u.federationId, u.round, u.clientId, u.updateId);
        if (!present.has(name)) {
          throw new StoreCorruptError(
            `object ${name} of accepted update is missing from ${names.bucket}`,
            name,
          );
        }
      }
    }
  }
  for (const name of present) {
    const update = /^updates\/([^/]+)\/(\d+)\/([^/]+)\/([^/]+)$/.exec(name);
    if (update !== null) {
      const accepted = roundEntry(state, update[1], Number(update[2]))?.updates.get(update[3]);
      if (accepted?.updateId !== update[4]) {
        await retryTransient(() => h.objects.delete(name));
        unjournaledUpdates++;
      }
      continue;
    }
    const adapter = /^adapters\/([0-9a-f]{64})\/model$/.exec(name);
    if (adapter !== null && !referenced.has(adapter[1])) {
      const { safetensors, config } = adapterObjects(adapter[1]);
      await retryTransient(() => h.objects.delete(safetensors));
      if (present.has(config)) await retryTransient(() => h.objects.delete(config));
      unreferencedAdapters++;
    }
  }
  const info = await retryTransient(() =>
    h.jsm.streams.info(names.uploadStream, { subjects_filter: `${names.uploadPrefix}.>` }),
  );
  const stale = new Set<string>();
  for (const subject of Object.keys(info.state.subjects ?? {})) {
    const at = uploadOfSubject(names, subject);
    if (at === undefined) continue;
    if (roundEntry(state, at.federationId, at.round)?.record.state !== "open") {
      await retryTransient(() => h.jsm.streams.purge(names.uploadStream, { filter: subject }));
      stale.add(`${at.federationId}/${at.round}`);
    }
  }
  staleUploadRounds = stale.size;
  return { unjournaledUpdates, staleUploadRounds, tempFiles: 0, unreferencedAdapters };
}
