/** Typed errors of the local `nats-server` (the publisher's errors are the port's, in `core/publisher.ts`). */

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
