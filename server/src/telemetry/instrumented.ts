/**
 * Telemetry around the coordinator's edges without touching them: a
 * `CoordinatorStore` whose durable writes are timed (journal lines, upload
 * commits, merged adapters — each ends in an fsync) and a `ResultPublisher`
 * whose publishes are spans of their round.
 */

import type { ResultPublisher } from "../core/publisher.ts";
import type { CoordinatorStore, UploadSink } from "../core/store.ts";
import type { Telemetry } from "../core/telemetry.ts";

function timedSink(sink: UploadSink, telemetry: Telemetry): UploadSink {
  return {
    get key() {
      return sink.key;
    },
    get expected() {
      return sink.expected;
    },
    get offset() {
      return sink.offset;
    },
    ...(sink.path !== undefined ? { path: sink.path } : {}),
    write: (chunk) => sink.write(chunk),
    commit: () => telemetry.storeWrite("upload", () => sink.commit()),
    close: () => sink.close(),
    abort: () => sink.abort(),
  };
}

/**
 * `store` with its durable writes timed into `tributary_store_fsync_duration_seconds`.
 *
 * @example
 * const store = instrumentStore(createFileStore(dataDir), telemetry);
 */
export function instrumentStore(store: CoordinatorStore, telemetry: Telemetry): CoordinatorStore {
  return {
    open: () => store.open(),
    state: () => store.state(),
    append: (event) => telemetry.storeWrite("journal", () => store.append(event)),
    beginUpload: async (key, expected) => timedSink(await store.beginUpload(key, expected), telemetry),
    uploadStatus: (key) => store.uploadStatus(key),
    discardUpload: (key) => store.discardUpload(key),
    discardRoundUploads: (federationId, round) => store.discardRoundUploads(federationId, round),
    openUpdate: (federationId, round, clientId) => store.openUpdate(federationId, round, clientId),
    putAdapter: (input) => telemetry.storeWrite("adapter", () => store.putAdapter(input)),
    getAdapter: (hash) => store.getAdapter(hash),
    adapterForRound: (federationId, round) => store.adapterForRound(federationId, round),
    ...(store.follow !== undefined ? { follow: store.follow.bind(store) } : {}),
    close: () => store.close(),
  };
}

/**
 * `publisher` with each publish traced as a child of its round and timed into
 * `tributary_nats_publish_duration_seconds`.
 */
export function instrumentPublisher(publisher: ResultPublisher, telemetry: Telemetry): ResultPublisher {
  return {
    publish: (result, adapter) =>
      telemetry.publish(result.federationId, result.round, () => publisher.publish(result, adapter)),
    close: () => publisher.close(),
  };
}
