/** Typed errors of the NATS edge: the local server, publishing and fetching round results. */

/** The `nats-server` binary could not be found. */
export class NatsServerNotFoundError extends Error {
  override readonly name = "NatsServerNotFoundError";
  constructor(
    /** Directories (or the explicit path) that were searched. */
    readonly searched: readonly string[],
  ) {
    super(
      'nats-server not found: install it with "apt-get install -y nats-server" (Debian/Ubuntu), ' +
        "or set --nats-url / TRIBUTARY_NATS_URL to an existing server " +
        `(searched ${searched.join(", ")})`,
    );
  }
}

/** `nats-server` was found but did not start (bad option, port taken, store dir unusable). */
export class NatsServerStartError extends Error {
  override readonly name = "NatsServerStartError";
  constructor(
    message: string,
    /** The last lines the server logged. */
    readonly logTail: readonly string[],
    options?: ErrorOptions,
  ) {
    super(logTail.length > 0 ? `${message}\n${logTail.join("\n")}` : message, options);
  }
}

/**
 * NATS could not be reached (or did not answer in time) while publishing.
 * Nothing is lost: publishing is idempotent, so the caller retries later.
 */
export class PublishUnavailableError extends Error {
  override readonly name = "PublishUnavailableError";
}

/** A result cannot be published as given: its bytes do not match its `contentHash`/`size`, or the name is unusable. */
export class PublishContentError extends Error {
  override readonly name = "PublishContentError";
}

/** The object store already holds a different object under the name this result's object must have. */
export class PublishConflictError extends Error {
  override readonly name = "PublishConflictError";
  constructor(
    message: string,
    /** Bucket and object name in conflict. */
    readonly bucket: string,
    readonly object: string,
  ) {
    super(message);
  }
}

/** An announcement is not a well-formed {@link RoundAnnouncement} JSON document. */
export class AnnouncementFormatError extends Error {
  override readonly name = "AnnouncementFormatError";
}

/** A fetched adapter is missing, or its bytes do not hash to the announced `contentHash`. */
export class AdapterIntegrityError extends Error {
  override readonly name = "AdapterIntegrityError";
  constructor(
    message: string,
    /** Bucket and object name that failed the check. */
    readonly bucket: string,
    readonly object: string,
  ) {
    super(message);
  }
}

/** NATS could not be reached (or did not answer in time) while fetching an adapter; retry later. */
export class FetchUnavailableError extends Error {
  override readonly name = "FetchUnavailableError";
}
