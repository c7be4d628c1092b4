/**
 * An upload's sink on the JetStream store: every write is published on the
 * upload's own subject in pieces, each acknowledged by JetStream (with the
 * stream's replicas) before the next, and each expecting the subject's last
 * sequence — so two coordinators can never interleave one upload's bytes,
 * and a client whose upload was cut resumes on any coordinator from the
 * durable offset (the last piece's offset plus its length).
 */
import { randomUUID } from "node:crypto";
import { headers as natsHeaders } from "@nats-io/transport-node";
import type { CommittedUpload, ExpectedUpload, UploadKey } from "../core/store.ts";
import { StoreIntegrityError } from "../core/store-errors.ts";
import { checkFits, createSinkGate, type ManagedSink } from "../store/upload-sink.ts";
import type { JetStreamHandles } from "./setup.ts";
import { retryTransient } from "./transient.ts";

/** Bytes per published piece: well under NATS's default 1 MiB payload limit, headers included. */
export const PIECE_BYTES = 256 * 1024;

/** Header carrying a piece's byte offset in its upload. */
export const OFFSET_HEADER = "Tributary-Offset";

/** What the uploads module does for a sink. */
export interface StreamSinkHooks {
  /** Verifies the staged bytes and commits them (the subject's last sequence is `lastSeq`). */
  commit(lastSeq: number): Promise<CommittedUpload>;
  /** Deletes the staged bytes. */
  discard(): Promise<void>;
  /** Called once when the sink stops being the key's active sink. */
  release(): void;
}

/** Parameters of {@link createStreamSink}. */
export interface StreamSinkOptions {
  readonly h: JetStreamHandles;
  readonly key: UploadKey;
  readonly expected: ExpectedUpload;
  readonly subject: string;
  /** Durable bytes already staged. */
  readonly offset: number;
  /** Sequence of the subject's last message (0: none). */
  readonly lastSeq: number;
  readonly hooks: StreamSinkHooks;
}

/**
 * A sink publishing to `options.subject` from `options.offset`.
 *
 * @example
 * const sink = createStreamSink({ h, key, expected, subject, offset: 0, lastSeq: 0, hooks });
 */
export function createStreamSink(options: StreamSinkOptions): ManagedSink {
  const { h, key, expected, subject, hooks } = options;
  let offset = options.offset;
  let lastSeq = options.lastSeq;
  const gate = createSinkGate(key);
  const serial = gate.serial;
  const nonce = randomUUID();
  const finish = () => {
    gate.finish();
    hooks.release();
  };

  return {
    key,
    expected,
    get offset() {
      return offset;
    },
    write: (chunk) =>
      serial(async () => {
        checkFits(key, expected, offset, chunk.length);
        for (let at = 0; at < chunk.length; at += PIECE_BYTES) {
          const piece = chunk.subarray(at, Math.min(chunk.length, at + PIECE_BYTES));
          const headers = natsHeaders();
          headers.set(OFFSET_HEADER, String(offset));
          // Repeated after a lost acknowledgement, a piece is a duplicate, not a second copy.
          const msgID = `${nonce}:${offset}`;
          const ack = await retryTransient(() =>
            h.js.publish(subject, piece, { headers, msgID, expect: { lastSubjectSequence: lastSeq } }),
          );
          lastSeq = ack.seq;
          offset += piece.length;
        }
      }),
    commit: () =>
      serial(async () => {
        if (offset < expected.size) {
          throw new StoreIntegrityError(
            "incomplete",
            key,
            `commit after ${offset} of ${expected.size} bytes; send the rest from offset ${offset}`,
          );
        }
        try {
          return await hooks.commit(lastSeq);
        } finally {
          finish();
        }
      }),
    close: () =>
      serial(async () => {
        finish();
      }),
    abort: () =>
      serial(async () => {
        finish();
        await hooks.discard();
      }),
    async stop(why) {
      if (await gate.stop(why)) hooks.release();
    },
  };
}
