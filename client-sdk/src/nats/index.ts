/**
 * `@tributary/client/nats`: the NATS side of a training node, for tools that
 * follow a federation's results themselves. `watchResults` follows the round
 * announcements (the last one first) and downloads an announced adapter from
 * the JetStream object store, verified against its content hash;
 * `openNatsLink` is the reconnecting connection both this and the
 * coordinator's publisher use. The announcement format itself is
 * `@tributary/protocol`'s.
 *
 * @example
 * import { watchResults } from "@tributary/client/nats";
 * const watch = watchResults({ servers: "nats://127.0.0.1:4222", federationId: "support-bot" });
 * for await (const announcement of watch) {
 *   const { configJson, safetensors } = await watch.fetchAdapter(announcement);
 * }
 */
export {
  type NatsLink,
  type NatsLinkOptions,
  openNatsLink,
  redactCredentials,
  withTimeout,
} from "./connection.ts";
export { AdapterIntegrityError, FetchUnavailableError } from "./errors.ts";
export {
  type FetchResultOptions,
  fetchResultAdapter,
  type ResultWatch,
  type WatchResultsOptions,
  watchResults,
} from "./subscriber.ts";
