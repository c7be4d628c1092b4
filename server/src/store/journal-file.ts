/**
 * The journal file: JSON lines, each appended with one positioned write and
 * an fsync before the append resolves. Loading replays it; a torn tail (an
 * unterminated or unparsable last line — a write that a crash cut short,
 * which therefore was never acknowledged) is truncated, while a bad line
 * followed by other lines is corruption and refuses to load.
 */
import { constants, type FileHandle, open } from "node:fs/promises";
import { dirname } from "node:path";
import { JournalEventError, StoreCorruptError } from "../core/store-errors.ts";
import { syncDir, writeFully } from "./fs-util.ts";
import { parseJournalEvent } from "./journal-codec.ts";
import { applyEvent, emptyState, type MutableStoreState } from "./journal-state.ts";

/** An open journal: the replayed state and the appender. */
export interface JournalFile {
  readonly path: string;
  /** State after every line read at open. */
  readonly state: MutableStoreState;
  /** Bytes of a torn tail removed at open (0 normally). */
  readonly tornBytes: number;
  /** Writes `line` (ending in `\n`) at the end and fsyncs; calls must not overlap. */
  append(line: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

function parseLine(bytes: Uint8Array): ReturnType<typeof parseJournalEvent> {
  const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  return parseJournalEvent(JSON.parse(text));
}

function reasonOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Opens (creating if needed) and replays the journal at `path`. Throws
 * `StoreCorruptError` naming the file and the 1-based line for a bad line
 * that is not the last one, or an event that does not fit the state before it.
 */
export async function openJournal(path: string): Promise<JournalFile> {
  const handle = await open(path, constants.O_RDWR | constants.O_CREAT, 0o600);
  try {
    await syncDir(dirname(path)); // the journal's own entry, when it was just created
    const { state, validBytes, tornBytes } = await load(handle, path);
    if (tornBytes > 0) {
      await handle.truncate(validBytes);
      await handle.sync();
    }
    return { path, state, tornBytes, ...appender(handle, path, validBytes) };
  } catch (err) {
    await handle.close();
    throw err;
  }
}

async function load(
  handle: FileHandle,
  path: string,
): Promise<{ state: MutableStoreState; validBytes: number; tornBytes: number }> {
  const bytes = await handle.readFile();
  const state = emptyState();
  let start = 0;
  let line = 0;
  while (start < bytes.length) {
    line++;
    const nl = bytes.indexOf(0x0a, start);
    const end = nl < 0 ? bytes.length : nl;
    const last = nl < 0 || nl + 1 === bytes.length;
    let event: ReturnType<typeof parseLine>;
    try {
      if (nl < 0) throw new Error("no newline at the end");
      event = parseLine(bytes.subarray(start, end));
    } catch (err) {
      if (last) return { state, validBytes: start, tornBytes: bytes.length - start };
      throw new StoreCorruptError(
        `${path}:${line}: corrupt journal line (${reasonOf(err)}); later lines follow, so it is not a torn write`,
        path,
        line,
        { cause: err },
      );
    }
    try {
      applyEvent(state, event);
    } catch (err) {
      if (!(err instanceof JournalEventError)) throw err;
      throw new StoreCorruptError(`${path}:${line}: ${err.message}`, path, line, { cause: err });
    }
    start = nl + 1;
  }
  return { state, validBytes: bytes.length, tornBytes: 0 };
}

function appender(handle: FileHandle, path: string, size: number): Pick<JournalFile, "append" | "close"> {
  let busy = false;
  let broken: unknown;
  return {
    async append(line) {
      if (broken !== undefined) {
        throw new Error(`${path}: journal unusable after a failed write`, { cause: broken });
      }
      if (busy) throw new Error(`${path}: overlapping journal appends`);
      busy = true;
      try {
        await writeFully(handle, line, size);
        await handle.sync();
        size += line.length;
      } catch (err) {
        // Cut the partial line off, so that later lines do not follow garbage.
        await handle
          .truncate(size)
          .then(() => handle.sync())
          .catch((truncateErr: unknown) => {
            broken = truncateErr;
          });
        throw err;
      } finally {
        busy = false;
      }
    },
    async close() {
      await handle.close();
    },
  };
}
