/**
 * The journal as a JetStream stream: event `seq` is the stream sequence, so
 * an append carries the sequence it expects to follow (`Nats-Expected-Last-
 * Sequence`) and two writers can never interleave the history — the second
 * is refused, reads what it missed, and decides again. Replay folds the
 * stream with the file store's own `applyEvent`, so both stores hold the
 * same history the same way.
 */
import { createHash } from "node:crypto";
import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import type { JournalEvent } from "../core/store.ts";
import { JournalEventError, StoreCorruptError } from "../core/store-errors.ts";
import { parseJournalEvent } from "../store/journal-codec.ts";
import { applyEvent, emptyState, type MutableStoreState } from "../store/journal-state.ts";
import type { JetStreamNames } from "./names.ts";
import type { JetStreamHandles } from "./setup.ts";
import { readStream } from "./stream-reader.ts";
import { retryTransient } from "./transient.ts";

/** The journal stream of an open JetStream store. */
export interface JournalStream {
  /** Everything journaled so far that this process has read. */
  readonly state: MutableStoreState;
  /**
   * Writes `event` (its `seq` the next one) if nothing was journaled since
   * `state` — returns `"written"` and applies it — or reads what other
   * writers journaled meanwhile, applies it and returns `"behind"`.
   */
  tryAppend(event: JournalEvent): Promise<"written" | "behind">;
  /** Reads and applies the events other writers journaled since `state`; returns them. */
  catchUp(): Promise<JournalEvent[]>;
}

const decoder = new TextDecoder();

function isWrongLastSequence(err: unknown): boolean {
  return (
    err instanceof JetStreamApiError &&
    (err.code === JetStreamApiCodes.StreamWrongLastSequence ||
      err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
  );
}

/**
 * Opens the journal of `names.journalStream` and replays it.
 *
 * @example
 * const journal = await openJournalStream(handles, names);
 * if ((await journal.tryAppend(event)) === "behind") { ... decide again ... }
 */
export async function openJournalStream(
  h: JetStreamHandles,
  names: JetStreamNames,
  /** Told about every event read after the replay (journaled by another writer), in order. */
  onRead: (event: JournalEvent) => void = () => undefined,
): Promise<JournalStream> {
  const state = emptyState();
  const where = `JetStream stream ${names.journalStream}`;

  const catchUp = async (): Promise<JournalEvent[]> => {
    const info = await retryTransient(() => h.jsm.streams.info(names.journalStream));
    const { first_seq: first, last_seq: last, messages } = info.state;
    if (messages > 0 && (first !== 1 || messages !== last)) {
      throw new StoreCorruptError(
        `${where} holds sequences ${first}–${last} (${messages} messages): the journal must keep every event from 1; was it purged?`,
        where,
      );
    }
    const read: JournalEvent[] = [];
    for await (const m of readStream(h.js, {
      stream: names.journalStream,
      fromSeq: state.lastSeq + 1,
      untilSeq: last,
    })) {
      let event: JournalEvent;
      try {
        event = parseJournalEvent(JSON.parse(decoder.decode(m.data)));
        if (event.seq !== m.seq)
          throw new JournalEventError(`event seq ${event.seq} at stream sequence ${m.seq}`);
        applyEvent(state, event);
      } catch (err) {
        throw new StoreCorruptError(`${where} message ${m.seq}: ${(err as Error).message}`, where, m.seq, {
          cause: err,
        });
      }
      read.push(event);
    }
    if (replayed) for (const event of read) onRead(event);
    return read;
  };

  let replayed = false;
  await catchUp();
  replayed = true;
  return {
    state,
    catchUp,
    async tryAppend(event) {
      const text = JSON.stringify(event);
      const digest = createHash("sha256").update(text).digest("hex").slice(0, 32);
      try {
        const ack = await retryTransient(() =>
          h.js.publish(names.journalSubject, text, {
            expect: { lastSequence: state.lastSeq, streamName: names.journalStream },
            // A retry of this very event is a duplicate, never a second copy.
            msgID: `${event.seq}-${digest}`,
          }),
        );
        if (ack.seq !== event.seq) {
          throw new StoreCorruptError(
            `${where}: event ${event.seq} was stored at sequence ${ack.seq}`,
            where,
            ack.seq,
          );
        }
      } catch (err) {
        if (!isWrongLastSequence(err)) throw err;
        await catchUp();
        return "behind";
      }
      applyEvent(state, event);
      return "written";
    },
  };
}
