/**
 * The receiving end: following a federation's announcements (starting with
 * the last one) and downloading an announced adapter, verified against its
 * content hash.
 */
import { DeliverPolicy, JetStreamApiCodes, JetStreamApiError, jetstream } from "@nats-io/jetstream";
import { Objm } from "@nats-io/obj";
import type { NatsConnection } from "@nats-io/transport-node";
import {
  AnnouncementFormatError,
  adapterForRank,
  announcementSubject,
  DEFAULT_STREAM,
  DEFAULT_SUBJECT_PREFIX,
  type Log,
  parseAnnouncement,
  type ResultAdapter,
  type RoundAnnouncement,
  sha256Hex,
  silentLog,
} from "@tributary/protocol";
import { openNatsLink, withTimeout } from "./connection.ts";
import { AdapterIntegrityError, FetchUnavailableError } from "./errors.ts";

/** Options of {@link watchResults}. */
export interface WatchResultsOptions {
  /** Server URL(s). */
  readonly servers: string | readonly string[];
  readonly federationId: string;
  /** Default `tributary.rounds`. */
  readonly subjectPrefix?: string;
  /** Default `TRIBUTARY_ROUNDS`. */
  readonly stream?: string;
  /** Wait between reconnect attempts, and between looks for a stream not created yet (default 2 s). */
  readonly reconnectTimeWaitMs?: number;
  /** Expiry of each pull; a consumer lost in a server restart is noticed after about this long (default 5 s). */
  readonly pullExpiresMs?: number;
  /** Longest {@link ResultWatch.fetchAdapter} may take (default 60 s). */
  readonly fetchTimeoutMs?: number;
  readonly log?: Log;
}

/** A federation's announcements, as an async iterable (iterate it once). */
export interface ResultWatch extends AsyncIterable<RoundAnnouncement> {
  /** Downloads and verifies an announced adapter over this watch's connection. */
  fetchAdapter(announcement: RoundAnnouncement, options?: { readonly rank?: number }): Promise<ResultAdapter>;
  /** Ends the iteration and closes the connection. */
  close(): Promise<void>;
}

/** Options of {@link fetchResultAdapter}. */
export interface FetchResultOptions {
  /** Longest the download may take (default 60 s). */
  readonly timeoutMs?: number;
  /**
   * The rank the caller trains at: the announced rank variant of it (see
   * `adapterForRank`); absent or 0 = the merged adapter itself.
   */
  readonly rank?: number;
}

/** The announced adapter, or rank variant, that `rank` names. */
function announcedFor(announcement: RoundAnnouncement, rank: number | undefined) {
  const pick = adapterForRank(announcement, rank);
  if (pick === undefined) {
    const ranks = (announcement.rankVariants ?? []).map((v) => v.rank).join(", ");
    throw new AdapterIntegrityError(
      `round ${announcement.round} of ${announcement.federationId} has no adapter of rank ${rank}: its rank variants are ${ranks} (0 = the whole merged adapter)`,
      announcement.bucket,
      announcement.objects.safetensors,
    );
  }
  const variant = announcement.rankVariants?.find((v) => v.contentHash === pick.contentHash);
  return variant ?? announcement;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Follows the announcements of one federation: first the last one already
 * published (if any), then each new one. Survives NATS restarts. Malformed
 * messages are logged and skipped.
 *
 * @example
 * const watch = watchResults({ servers: "nats://127.0.0.1:4222", federationId: "fed-1" });
 * for await (const announcement of watch) {
 *   const { configJson, safetensors } = await watch.fetchAdapter(announcement);
 * }
 */
export function watchResults(options: WatchResultsOptions): ResultWatch {
  const log = options.log ?? silentLog;
  const stream = options.stream ?? DEFAULT_STREAM;
  const subject = announcementSubject(options.subjectPrefix ?? DEFAULT_SUBJECT_PREFIX, options.federationId);
  const waitMs = options.reconnectTimeWaitMs ?? 2_000;
  const link = openNatsLink({
    servers: options.servers,
    name: "tributary-watch",
    reconnectTimeWaitMs: waitMs,
    log,
  });
  let stop: () => void = () => {};

  const openConsumer = async (nc: NatsConnection) => {
    const js = jetstream(nc);
    let warned = false;
    while (!link.isClosed()) {
      try {
        return await js.consumers.get(stream, {
          filter_subjects: subject,
          deliver_policy: DeliverPolicy.LastPerSubject,
        });
      } catch (err) {
        const missing = err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound;
        if (!warned)
          log.warn(`waiting for stream ${stream}: ${missing ? "not created yet" : (err as Error).message}`);
        warned = true;
        await sleep(waitMs);
      }
    }
    return undefined;
  };

  async function* iterate(): AsyncGenerator<RoundAnnouncement> {
    let nc: NatsConnection;
    try {
      nc = await link.connection();
    } catch {
      return; // closed before connecting
    }
    const consumer = await openConsumer(nc);
    if (consumer === undefined) return;
    const messages = await consumer.consume({ max_messages: 16, expires: options.pullExpiresMs ?? 5_000 });
    stop = () => messages.stop();
    if (link.isClosed()) messages.stop();
    for await (const msg of messages) {
      try {
        yield parseAnnouncement(msg.json());
      } catch (err) {
        if (!(err instanceof AnnouncementFormatError || err instanceof SyntaxError)) throw err;
        log.warn(`skipping malformed announcement on ${msg.subject} (seq ${msg.seq}): ${err.message}`);
      }
    }
  }

  const fetchTimeoutMs = options.fetchTimeoutMs ?? 60_000;
  return {
    [Symbol.asyncIterator]: iterate,
    async fetchAdapter(announcement, opts = {}) {
      const nc = await withTimeout(
        link.connection(),
        fetchTimeoutMs,
        () => new FetchUnavailableError("NATS not connected"),
      );
      return fetchResultAdapter(nc, announcement, {
        timeoutMs: fetchTimeoutMs,
        ...(opts.rank !== undefined ? { rank: opts.rank } : {}),
      });
    },
    async close() {
      stop();
      await link.close();
    },
  };
}

async function getObject(
  store: Awaited<ReturnType<Objm["open"]>>,
  announcement: RoundAnnouncement,
  name: string,
) {
  const bytes = await store.getBlob(name);
  if (bytes === null) {
    throw new AdapterIntegrityError(
      `round ${announcement.round} of ${announcement.federationId}: object ${name} is missing from bucket ${announcement.bucket}`,
      announcement.bucket,
      name,
    );
  }
  return bytes;
}

async function download(
  nc: NatsConnection,
  announcement: RoundAnnouncement,
  rank: number | undefined,
): Promise<ResultAdapter> {
  const want = announcedFor(announcement, rank);
  const store = await new Objm(nc).open(announcement.bucket);
  const safetensors = await getObject(store, announcement, want.objects.safetensors);
  const hash = sha256Hex(safetensors);
  if (hash !== want.contentHash || safetensors.byteLength !== want.size) {
    throw new AdapterIntegrityError(
      `round ${announcement.round} of ${announcement.federationId}: adapter has sha256 ${hash} ` +
        `(${safetensors.byteLength} bytes), announced ${want.contentHash} (${want.size} bytes)`,
      announcement.bucket,
      want.objects.safetensors,
    );
  }
  const config = await getObject(store, announcement, want.objects.config);
  return { configJson: new TextDecoder().decode(config), safetensors };
}

/**
 * Downloads an announced adapter from the object store and checks that the
 * safetensors bytes hash to the announced `contentHash`.
 *
 * @throws {AdapterIntegrityError} when an object is missing or the hash/size differ.
 * @throws {FetchUnavailableError} when NATS fails or is too slow.
 * @example
 * const { configJson, safetensors } = await fetchResultAdapter(nc, announcement);
 */
export async function fetchResultAdapter(
  nc: NatsConnection,
  announcement: RoundAnnouncement,
  options: FetchResultOptions = {},
): Promise<ResultAdapter> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  try {
    return await withTimeout(
      download(nc, announcement, options.rank),
      timeoutMs,
      () => new FetchUnavailableError(`fetching round ${announcement.round} took over ${timeoutMs} ms`),
    );
  } catch (err) {
    if (err instanceof AdapterIntegrityError || err instanceof FetchUnavailableError) throw err;
    throw new FetchUnavailableError(`cannot fetch round ${announcement.round}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}
