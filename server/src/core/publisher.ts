/**
 * The result-publisher port of the round logic: where merged rounds are
 * announced. `transport/nats/publisher.ts` implements it on JetStream.
 */
import type { ResultAdapter } from "@tributary/protocol";
import type { RoundResult } from "./model.ts";

/** A round's adapter as published: the merged adapter, and its rank variants in the order of `result.rankVariants`. */
export interface PublishedAdapter extends ResultAdapter {
  readonly variants?: readonly ResultAdapter[];
}

/**
 * Announces merged rounds. Publishing is idempotent: the same round can be
 * published again (after a crash, a timeout, …) without creating anything new.
 */
export interface ResultPublisher {
  /**
   * Stores the adapter and announces the result.
   *
   * @throws {PublishUnavailableError} when NATS is down or slow; retry later.
   * @throws {PublishContentError} when the adapter's bytes do not match `result.contentHash`/`size`.
   * @throws {PublishConflictError} when a different object already has this result's object name.
   */
  publish(result: RoundResult, adapter: PublishedAdapter): Promise<void>;
  /** Closes the NATS connection. */
  close(): Promise<void>;
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
