/**
 * The NATS edge of the coordinator: publishing merged rounds (adapter in a
 * JetStream object store, announcement in the `TRIBUTARY_ROUNDS` stream, in
 * `@tributary/protocol`'s format) and a supervised local `nats-server` for
 * `npm start`. Following announcements is the client's side
 * (`@tributary/client/nats`).
 *
 * @example
 * const nats = await startLocalNats({ dataDir: "data", log: console });
 * const publisher = createNatsPublisher({ servers: nats.url, log: console });
 */
export {
  PublishConflictError,
  PublishContentError,
  PublishUnavailableError,
  type ResultPublisher,
} from "../../core/publisher.ts";
export { NatsServerNotFoundError, NatsServerStartError } from "./errors.ts";
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
export { createNatsPublisher, type NatsPublisherOptions } from "./publisher.ts";
