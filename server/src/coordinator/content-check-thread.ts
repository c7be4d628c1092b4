/**
 * A content-check thread's work: `validateUpdateStream` — the finite checks,
 * magnitudes and float64 norms of every module — on a staged update read
 * from its file, off the coordinator's main thread. A thread module calls
 * {@link serveContentChecks} (`content-check-main.ts`, or the service's,
 * which installs native float64 products first).
 */
import { closeSync, openSync } from "node:fs";
import { parentPort } from "node:worker_threads";
import { readAtSync } from "../peft/file-read.ts";
import type { ContentCheckReply, ContentCheckRequest } from "./content-check-protocol.ts";
import { refusalOf } from "./content-check-protocol.ts";
import { validateUpdateStream } from "./update-stream-validator.ts";

async function check(req: ContentCheckRequest): Promise<ContentCheckReply> {
  const fd = openSync(req.path, "r");
  try {
    const modules = await validateUpdateStream({
      federation: req.federation,
      clientId: req.clientId,
      configJson: req.configJson,
      tensors: req.tensors,
      readTensor: async (name) => {
        const t = req.tensors.get(name);
        if (t === undefined) throw new RangeError(`${req.path}: no tensor "${name}"`);
        const bytes = new Uint8Array(t.byteLength);
        if (readAtSync(fd, t.offset, bytes) !== t.byteLength) {
          throw new Error(`${req.path}: tensor "${name}" is cut short (the file shrank while open)`);
        }
        return bytes;
      },
    });
    return { id: req.id, ok: true, modules: Object.fromEntries(modules) };
  } catch (err) {
    const refusal = refusalOf(err);
    if (refusal !== undefined) return { id: req.id, ok: false, refusal };
    const e = err instanceof Error ? err : new Error(String(err));
    return { id: req.id, ok: false, failure: { name: e.name, message: e.message } };
  } finally {
    closeSync(fd);
  }
}

/**
 * Answers the requests of the pool that started this thread, once `ready`
 * (what the thread sets up first, e.g. native products) has settled.
 *
 * @example
 * serveContentChecks(installDecompositions());
 */
export function serveContentChecks(ready: Promise<unknown> = Promise.resolve()): void {
  parentPort?.on("message", (req: ContentCheckRequest) => {
    void ready
      .catch(() => undefined)
      .then(() => check(req))
      .then((reply) => parentPort?.postMessage(reply));
  });
}
