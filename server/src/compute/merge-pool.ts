/**
 * A pool of worker threads that merge modules in parallel: the core's
 * `MergeRunner` port (wasm tfjs has no
 * threads of its own in Node, so this is how both cores get used). With
 * `threads: 0` the work runs in the calling thread, same code path.
 */
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import type { MergeRunner } from "../core/merge-runner.ts";
import { mergeDenseTensor, mergeModule } from "../merge/engine.ts";
import type { ModuleGroup } from "../merge/types.ts";
import { type BackendInfo, selectBackend } from "./backend.ts";
import { mergeFiles } from "./merge-files.ts";
import { deserializeError, timed, type WorkerReply, type WorkerRequest } from "./worker-protocol.ts";

/**
 * The worker's entry: the compiled `merge-worker.js` next to this module, or,
 * when this module runs from source (tests, `tsx`), `merge-worker-entry.mjs`,
 * which registers the TypeScript loader in the worker first.
 */
function workerEntry(): URL {
  const fromSource = import.meta.url.endsWith(".ts");
  return new URL(fromSource ? "./merge-worker-entry.mjs" : "./merge-worker.js", import.meta.url);
}

/** Options of `createMergePool`. */
export interface MergePoolOptions {
  /** Worker threads; 0 runs in-process. Default: the machine's parallelism. */
  readonly threads?: number;
  /** Force a backend (`TRIBUTARY_BACKEND` otherwise). */
  readonly backend?: string;
}

interface Pending {
  readonly req: WorkerRequest;
  readonly transfer: ArrayBuffer[];
  resolve(reply: WorkerReply): void;
  reject(err: Error): void;
}

/**
 * Starts the pool and waits until every worker has its backend.
 *
 * @example
 * const pool = await createMergePool();
 * const { result } = await pool.mergeModule(group, resolveOptions({ method: "from" }));
 * await pool.close();
 */
export async function createMergePool(opts: MergePoolOptions = {}): Promise<MergeRunner> {
  const threads = opts.threads ?? availableParallelism();
  if (threads === 0) return inProcessPool(await selectBackend(opts.backend));
  // Workers run modules in parallel: one BLAS thread each, not a core-sized
  // pool per worker (read by OpenBLAS when the first worker loads LAPACK).
  process.env.OPENBLAS_NUM_THREADS ??= "1";
  const workerUrl = workerEntry();
  const queue: Pending[] = [];
  const idle: Worker[] = [];
  const busy = new Map<Worker, Pending>();
  let nextId = 1;
  let closed = false;

  const pump = () => {
    while (idle.length > 0 && queue.length > 0) {
      const w = idle.pop()!;
      const job = queue.shift()!;
      busy.set(w, job);
      w.postMessage(job.req, job.transfer);
    }
  };
  const workers = Array.from({ length: threads }, () => {
    const w = new Worker(workerUrl, { workerData: { backend: opts.backend } });
    w.on("message", (reply: WorkerReply) => {
      const job = busy.get(w);
      busy.delete(w);
      idle.push(w);
      job?.resolve(reply);
      pump();
    });
    w.on("error", (err) => {
      const job = busy.get(w);
      busy.delete(w);
      job?.reject(err);
    });
    w.on("exit", (code) => {
      const job = busy.get(w);
      if (job !== undefined) job.reject(new Error(`merge worker exited with code ${code}`));
      if (!closed) {
        for (const q of queue.splice(0)) q.reject(new Error(`merge worker exited with code ${code}`));
      }
    });
    idle.push(w);
    return w;
  });

  const submit = (req: WorkerRequest, transfer: ArrayBuffer[] = []): Promise<WorkerReply> =>
    new Promise((resolve, reject) => {
      if (closed) {
        reject(new Error("merge pool is closed"));
        return;
      }
      queue.push({ req, transfer, resolve, reject });
      pump();
    });
  const unwrap = <K extends "module" | "dense" | "init">(reply: WorkerReply, kind: K) => {
    if (!reply.ok) throw deserializeError(reply.error);
    if (reply.kind !== kind) throw new Error(`merge worker answered ${reply.kind} to ${kind}`);
    return reply as Extract<WorkerReply, { kind: K }>;
  };

  const inits = await Promise.all(workers.map(() => submit({ id: nextId++, kind: "init" })));
  const backend = unwrap(inits[0], "init").backend;
  return {
    backend,
    threads,
    async mergeModule(group, o, how) {
      const moved = how?.transfer === true ? ownedBuffers(group) : [];
      const r = unwrap(await submit({ id: nextId++, kind: "module", group, opts: o }, moved), "module");
      return { result: r.result, ms: r.ms };
    },
    async mergeDense(group, o) {
      const r = unwrap(await submit({ id: nextId++, kind: "dense", group, opts: o }), "dense");
      return { result: r.result, ms: r.ms };
    },
    readsFiles: backend.stridedProducts,
    async mergeFiles(files, o) {
      const r = unwrap(await submit({ id: nextId++, kind: "files", files, opts: o }), "module");
      return { result: r.result, ms: r.ms };
    },
    async close() {
      closed = true;
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
}

/**
 * The buffers of a group's factor arrays that each array wholly owns (a view
 * into a larger or pooled buffer is copied instead, so nothing else is
 * detached), without duplicates.
 */
function ownedBuffers(group: ModuleGroup): ArrayBuffer[] {
  const out = new Set<ArrayBuffer>();
  for (const c of group.clients) {
    for (const x of [c.a, c.b]) {
      if (x.buffer instanceof ArrayBuffer && x.byteOffset === 0 && x.byteLength === x.buffer.byteLength)
        out.add(x.buffer);
    }
  }
  return [...out];
}

function inProcessPool(backend: BackendInfo): MergeRunner {
  return {
    backend,
    threads: 0,
    mergeModule: async (group, o) => timed(() => mergeModule(group, o)),
    mergeDense: async (group, o) => timed(() => mergeDenseTensor(group, o)),
    readsFiles: backend.stridedProducts,
    mergeFiles: async (files, o) => timed(() => mergeFiles(files, o)),
    async close() {},
  };
}
