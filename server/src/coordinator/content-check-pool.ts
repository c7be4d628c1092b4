/**
 * Intake's content checks on threads of their own: the finite checks and
 * float64 norms of a 27 MB update take tens of milliseconds of CPU, which on
 * the main thread delay every other upload's bytes; here they run beside it,
 * one update per thread at a time. An update whose bytes are not in a local
 * file is checked on the calling thread.
 */
import { Worker } from "node:worker_threads";
import type { UpdateModuleSummary } from "../core/model.ts";
import type { UpdateReader } from "../core/store.ts";
import {
  type ContentCheckReply,
  type ContentCheckRequest,
  refusalError,
  type StagedTensor,
} from "./content-check-protocol.ts";
import { validateUpdateStream } from "./update-stream-validator.ts";

/** What a content check is given: the update's federation, client and header, and its stored bytes. */
export interface ContentCheckInput {
  readonly federation: ContentCheckRequest["federation"];
  readonly clientId: string;
  readonly configJson: string;
  readonly reader: UpdateReader;
}

/** Checks stored updates' content; `close()` stops the threads. */
export interface ContentChecker {
  /** Each module's summary; throws `InvalidUpdateError` for refused content. */
  check(input: ContentCheckInput): Promise<Record<string, UpdateModuleSummary>>;
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

/** The checks on the calling thread: what a coordinator without threads (tests, `threads: 0`) uses. */
export const inlineContentChecker: ContentChecker = { check: checkInline, close: async () => undefined };

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

/**
 * Starts `threads` content-check threads (0: checks run inline) running
 * `module`, a module that calls `serveContentChecks` (default:
 * `content-check-main`).
 *
 * @example
 * const checker = createContentCheckPool(2);
 * const modules = await checker.check({ federation, clientId, configJson, reader });
 */
export function createContentCheckPool(threads: number, module: URL = defaultModule()): ContentChecker {
  if (threads <= 0) return inlineContentChecker;
  let nextId = 1;
  const pending = new Map<number, { resolve(r: ContentCheckReply): void; reject(e: Error): void }>();
  const queue: ContentCheckRequest[] = [];
  const idle: Worker[] = [];
  const busy = new Map<Worker, number>();
  let closed = false;
  const pump = () => {
    while (idle.length > 0 && queue.length > 0) {
      const w = idle.pop()!;
      const req = queue.shift()!;
      busy.set(w, req.id);
      w.postMessage(req);
    }
  };
  const fail = (w: Worker, err: Error) => {
    const id = busy.get(w);
    busy.delete(w);
    if (id !== undefined) {
      pending.get(id)?.reject(err);
      pending.delete(id);
    }
  };
  const start = (): Worker => {
    const w = startThread(module);
    w.unref();
    w.on("message", (reply: ContentCheckReply) => {
      busy.delete(w);
      idle.push(w);
      pending.get(reply.id)?.resolve(reply);
      pending.delete(reply.id);
      pump();
    });
    w.on("error", (err) => fail(w, err));
    w.on("exit", (code) => {
      fail(w, new Error(`a content-check thread exited with code ${code}`));
      const at = idle.indexOf(w);
      if (at >= 0) idle.splice(at, 1);
      // A thread that died is replaced, so intake keeps its threads.
      if (!closed) {
        idle.push(start());
        pump();
      }
    });
    return w;
  };
  const workers = () => [...idle, ...busy.keys()];
  for (let i = 0; i < threads; i++) idle.push(start());

  return {
    async check(input) {
      const path = input.reader.path;
      if (closed || path === undefined) return checkInline(input);
      const tensors = new Map<string, StagedTensor>();
      for (const [name, t] of input.reader.tensors) {
        tensors.set(name, {
          dtype: t.dtype,
          shape: [...t.shape],
          offset: t.offset,
          byteLength: t.byteLength,
        });
      }
      const req: ContentCheckRequest = {
        id: nextId++,
        federation: input.federation,
        clientId: input.clientId,
        configJson: input.configJson,
        path,
        tensors,
      };
      const reply = await new Promise<ContentCheckReply>((resolve, reject) => {
        pending.set(req.id, { resolve, reject });
        queue.push(req);
        pump();
      });
      if (reply.ok) return reply.modules;
      if ("refusal" in reply) throw refusalError(reply.refusal);
      throw Object.assign(new Error(reply.failure.message), { name: reply.failure.name });
    },
    async close() {
      closed = true;
      await Promise.all(workers().map((w) => w.terminate()));
    },
  };
}
