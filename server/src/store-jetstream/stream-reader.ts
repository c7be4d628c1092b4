/**
 * Reading a range of a stream in order (all of it, or one subject's
 * messages) with an ordered consumer, which JetStream recreates at the right
 * sequence after any gap, so nothing is skipped or read twice.
 */
import { DeliverPolicy, type JetStreamClient, type JsMsg } from "@nats-io/jetstream";

/** What to read. */
export interface StreamRange {
  readonly stream: string;
  /** Only messages on this subject (default: every message). */
  readonly subject?: string;
  /** First stream sequence to read. */
  readonly fromSeq: number;
  /** Stop after the message with this sequence (the last one wanted). */
  readonly untilSeq: number;
  /** Deliver the messages' headers and sequences only, not their bodies. */
  readonly headersOnly?: boolean;
}

/**
 * The messages of `range`, in stream order; nothing when `untilSeq < fromSeq`.
 *
 * @example
 * for await (const m of readStream(js, { stream: "TRIBUTARY_JOURNAL", fromSeq: 1, untilSeq: last })) apply(m);
 */
export async function* readStream(js: JetStreamClient, range: StreamRange): AsyncGenerator<JsMsg> {
  if (range.untilSeq < range.fromSeq) return;
  const consumer = await js.consumers.get(range.stream, {
    deliver_policy: DeliverPolicy.StartSequence,
    opt_start_seq: range.fromSeq,
    ...(range.subject !== undefined ? { filter_subjects: range.subject } : {}),
    ...(range.headersOnly === true ? { headers_only: true } : {}),
  });
  // A few pieces at a time: several uploads committing at once must not flood the connection.
  const messages = await consumer.consume({ max_messages: range.headersOnly === true ? 1024 : 8 });
  try {
    for await (const m of messages) {
      if (m.seq > range.untilSeq) return;
      yield m;
      if (m.seq >= range.untilSeq) return;
    }
  } finally {
    await messages.close();
  }
}
