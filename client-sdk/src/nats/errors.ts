/** Typed errors of fetching round results from NATS. */

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
