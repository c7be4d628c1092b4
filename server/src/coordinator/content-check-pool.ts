/**
 * Intake's content checks on threads of their own: the finite checks and
 * float64 norms of a 27 MB update take tens of milliseconds of CPU, which on
 * the main thread delay every other upload's bytes; here they run beside it.
 * A check can start while its update still arrives (`begin`): the thread
 * checks each module as soon as its bytes are written, so an update's check
 * is done moments after its last byte instead of queueing behind every
 * other update's whole check then. An update whose bytes are not in a local
 * file is checked on the calling thread.
 */
import { open } from "node:fs/promises";
import { Worker } from "node:worker_threads";
import type { UpdateModuleSummary } from "../core/model.ts";
import type { UpdateReader } from "../core/store.ts";
import {
  type ContentCheckMessage,
  type ContentCheckReply,
  type ContentCheckRequest,
  refusalError,
  type StagedTensor,
} from "./content-check-protocol.ts";
import { growingFile } from "./growing-file.ts";
import { checkStagedFile } from "./staged-check.ts";
import { validateUpdateStream } from "./update-stream-validator.ts";

/** What a content check is given: the update's federation, client and header, and its stored bytes. */
export interface ContentCheckInput {
  readonly federation: ContentCheckRequest["federation"];
  readonly clientId: string;
  readonly configJson: string;
  readonly reader: UpdateReader;
}

/** What a check of an update still arriving is given: its file as far as it is written, and its header's tensors. */
export interface GrowingCheckInput {
  readonly federation: ContentCheckRequest["federation"];
  readonly clientId: string;
  readonly configJson: string;
  /** The file the update is being written to. */
  readonly path: string;
  /** Its safetensors header, with each tensor's absolute offset. */
  readonly tensors: ReadonlyMap<string, StagedTensor>;
  /** Bytes of the file written so far. */
  readonly available: number;
}

/** A check following an update's writes. */
export interface GrowingCheck {
  /** The first `bytes` bytes of the file are written. */
  advance(bytes: number): void;
  /** The upload stopped: the check is abandoned and `result` rejects. */
  cancel(reason: string): void;
  /** Each module's summary once every byte is written and checked; rejects with `InvalidUpdateError` for refused content. */
  readonly result: Promise<Record<string, UpdateModuleSummary>>;
}

/** Checks stored updates' content; `close()` stops the threads. */
export interface ContentChecker {
  /** Each module's summary; throws `InvalidUpdateError` for refused content. */
  check(input: ContentCheckInput): Promise<Record<string, UpdateModuleSummary>>;
  /** Starts checking an update while it is written to `input.path`. */
  begin(input: GrowingCheckInput): Promise<GrowingCheck>;
  close(): Promise<void>;
}

/** Checks on the calling thread (also the fallback for updates not in a local file). */
export async function checkInline(input: ContentCheckInput): Promise<Record<string, UpdateModuleSummary>> {
  const modules = await validateUpdateStream({
    federation: input.federation,
    clientId: input.clientId,
    configJson: input.configJson,
    tensors: input.reader.tensors,
    readTensor: (name) => input.reader.read(name),
  });
  return Object.fromEntries(modules);
}

/** Starts checking a growing file on the calling thread. */
async function beginInline(input: GrowingCheckInput): Promise<GrowingCheck> {
  const handle = await open(input.path, "r");
  const file = growingFile(input.available);
  const result = checkStagedFile(input, handle.fd, file).finally(() => handle.close());
  result.catch(() => undefined); // awaited by intake after the commit; a refusal may come first
  return { advance: file.advance, cancel: (reason) => file.cancel(new Error(reason)), result };
}

/** The checks on the calling thread: what a coordinator without threads (tests, `threads: 0`) uses. */
export const inlineContentChecker: ContentChecker = {
  check: checkInline,
  begin: beginInline,
  close: async () => undefined,
};

/**
 * The thread module: `content-check-main` of this folder (compiled `.js`, or
 * `.ts` from source) unless the caller names its own.
 */
function defaultModule(): URL {
  const fromSource = import.meta.url.endsWith(".ts");
  return new URL(fromSource ? "./content-check-main.ts" : "./content-check-main.js", import.meta.url);
}

/** A thread running `module`, through the TypeScript loader when it is a `.ts` file. */
function startThread(module: URL): Worker {
  if (!module.pathname.endsWith(".ts")) return new Worker(module);
  return new Worker(new URL("./ts-thread-entry.mjs", import.meta.url), {
    workerData: { module: module.href },
  });
}

/** A check a thread owes an answer. */
interface Pending {
  readonly thread: Worker;
  resolve(r: ContentCheckReply): void;
  reject(e: Error): void;
}

/** The summaries of a thread's reply, or its refusal or failure thrown. */
function summariesOf(reply: ContentCheckReply): Record<string, UpdateModuleSummary> {
  if (reply.ok) return reply.modules;
  if ("refusal" in reply) throw refusalError(reply.refusal);
  throw Object.assign(new Error(reply.failure.message), { name: reply.failure.name });
}

/**
 * Starts `threads` content-check threads (0: checks run inline) running
 * `module`, a module that calls `serveContentChecks` (default:
 * `content-check-main`). Each check goes to the thread with the fewest
 * checks under way.
 *
 * @example
 * const checker = createContentCheckPool(2);
 * const modules = await checker.check({ federation, clientId, configJson, reader });
 */
export function createContentCheckPool(threads: number, module: URL = defaultModule()): ContentChecker {
  if (threads <= 0) return inlineContentChecker;
  let nextId = 1;
  const pending = new Map<number, Pending>();
  /** Each live thread and how many checks it has under way. */
  const load = new Map<Worker, number>();
  let closed = false;
  const settle = (id: number, outcome: { reply: ContentCheckReply } | { error: Error }) => {
    const p = pending.get(id);
    if (p === undefined) return;
    pending.delete(id);
    const n = load.get(p.thread);
    if (n !== undefined) load.set(p.thread, Math.max(0, n - 1));
    if ("reply" in outcome) p.resolve(outcome.reply);
    else p.reject(outcome.error);
  };
  const start = (): Worker => {
    const w = startThread(module);
    w.unref();
    load.set(w, 0);
    w.on("message", (reply: ContentCheckReply) => settle(reply.id, { reply }));
    const failAll = (err: Error) => {
      for (const [id, p] of pending) if (p.thread === w) settle(id, { error: err });
    };
    w.on("error", failAll);
    w.on("exit", (code) => {
      failAll(new Error(`a content-check thread exited with code ${code}`));
      load.delete(w);
      // A thread that died is replaced, so intake keeps its threads.
      if (!closed) start();
    });
    return w;
  };
  for (let i = 0; i < threads; i++) start();
  const leastLoaded = (): Worker => {
    let best: Worker | undefined;
    for (const [w, n] of load) if (best === undefined || n < load.get(best)!) best = w;
    return best!;
  };
  /** Sends `req` to the least loaded thread; resolves with its reply. */
  const send = (req: ContentCheckRequest): { thread: Worker; reply: Promise<ContentCheckReply> } => {
    const thread = leastLoaded();
    load.set(thread, (load.get(thread) ?? 0) + 1);
    const reply = new Promise<ContentCheckReply>((resolve, reject) => {
      pending.set(req.id, { thread, resolve, reject });
    });
    thread.postMessage(req satisfies ContentCheckMessage);
    return { thread, reply };
  };
  const staged = (tensors: ReadonlyMap<string, StagedTensor>): Map<string, StagedTensor> =>
    new Map(
      [...tensors].map(([name, t]) => [
        name,
        { dtype: t.dtype, shape: [...t.shape], offset: t.offset, byteLength: t.byteLength },
      ]),
    );

  return {
    async check(input) {
      const path = input.reader.path;
      if (closed || path === undefined) return checkInline(input);
      const { reply } = send({
        kind: "check",
        id: nextId++,
        federation: input.federation,
        clientId: input.clientId,
        configJson: input.configJson,
        path,
        tensors: staged(input.reader.tensors),
      });
      return summariesOf(await reply);
    },
    async begin(input) {
      if (closed) return beginInline(input);
      // Opened here and closed after the reply: the store renames the file at commit.
      const handle = await open(input.path, "r");
      const id = nextId++;
      const { thread, reply } = send({
        kind: "check",
        id,
        federation: input.federation,
        clientId: input.clientId,
        configJson: input.configJson,
        path: input.path,
        fd: handle.fd,
        available: input.available,
        tensors: staged(input.tensors),
      });
      const result = reply.then(summariesOf).finally(() => handle.close());
      result.catch(() => undefined); // awaited by intake after the commit; a refusal may come first
      const post = (msg: ContentCheckMessage) => {
        if (pending.has(id)) thread.postMessage(msg);
      };
      return {
        advance: (bytes) => post({ kind: "advance", id, available: bytes }),
        cancel: (reason) => post({ kind: "cancel", id, reason }),
        result,
      };
    },
    async close() {
      closed = true;
      await Promise.all([...load.keys()].map((w) => w.terminate()));
    },
  };
}
