/**
 * The NATS edge of the coordinator: announcing merged rounds (adapter in a
 * JetStream object store, announcement in the `TRIBUTARY_ROUNDS` stream),
 * following them, and a supervised local `nats-server` for `npm start`.
 *
 * @example
 * const nats = await startLocalNats({ dataDir: "data", log: console });
 * const publisher = createNatsPublisher({ servers: nats.url, log: console });
 * const outbox = createPublishOutbox({ publisher, pending, onPublished, log: console });
 */
export {
  ADAPTER_FILES,
  type AdapterObjects,
  adapterObjects,
  announcementSubject,
  DEFAULT_BUCKET,
  DEFAULT_STREAM,
  DEFAULT_SUBJECT_PREFIX,
  parseAnnouncement,
  type ResultAdapter,
  type RoundAnnouncement,
  toAnnouncement,
} from "./announcement.ts";
export { type NatsLink, type NatsLinkOptions, openNatsLink } from "./connection.ts";
export {
  AdapterIntegrityError,
  AnnouncementFormatError,
  FetchUnavailableError,
  NatsServerNotFoundError,
  NatsServerStartError,
  PublishConflictError,
  PublishContentError,
  PublishUnavailableError,
} from "./errors.ts";
export { type LogFields, type NatsLog, silentLog } from "./log.ts";
export { EXTRA_NATS_SERVER_DIRS, type FindNatsServerOptions, findNatsServer } from "./nats-binary.ts";
export {
  type NatsServerExit,
  type NatsServerProcess,
  type SpawnNatsServerOptions,
  spawnNatsServer,
} from "./nats-process.ts";
export {
  DEFAULT_NATS_PORT,
  type LocalNats,
  type LocalNatsOptions,
  startLocalNats,
} from "./nats-supervisor.ts";
export {
  createPublishOutbox,
  type PendingResult,
  type PublishOutbox,
  type PublishOutboxOptions,
} from "./publish-outbox.ts";
export { createNatsPublisher, type NatsPublisherOptions, type ResultPublisher } from "./publisher.ts";
export {
  type FetchResultOptions,
  fetchResultAdapter,
  type ResultWatch,
  type WatchResultsOptions,
  watchResults,
} from "./subscriber.ts";
