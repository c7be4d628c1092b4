/**
 * A content-check thread's work: `validateUpdateStream` — the finite checks,
 * magnitudes and float64 norms of every module — on a staged update read
 * from its file, off the coordinator's main thread. A thread module calls
 * {@link serveContentChecks} (`content-check-main.ts`, or the service's,
 * which installs native float64 products first). A thread checks several
 * updates at once: those whose files are still being written wait for their
 * bytes while the others go on.
 */
import { closeSync, openSync } from "node:fs";
import { parentPort } from "node:worker_threads";
import type {
  ContentCheckMessage,
  ContentCheckReply,
  ContentCheckRequest,
} from "./content-check-protocol.ts";
import { refusalOf } from "./content-check-protocol.ts";
import { type GrowingFile, growingFile } from "./growing-file.ts";
import { checkStagedFile } from "./staged-check.ts";

async function check(req: ContentCheckRequest, growing: GrowingFile | undefined): Promise<ContentCheckReply> {
  const fd = req.fd ?? openSync(req.path, "r");
  try {
    return { id: req.id, ok: true, modules: await checkStagedFile(req, fd, growing) };
  } catch (err) {
    const refusal = refusalOf(err);
    if (refusal !== undefined) return { id: req.id, ok: false, refusal };
    const e = err instanceof Error ? err : new Error(String(err));
    return { id: req.id, ok: false, failure: { name: e.name, message: e.message } };
  } finally {
    if (req.fd === undefined) closeSync(fd);
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
  /** The checks of files still being written, by request id. */
  const growing = new Map<number, GrowingFile>();
  parentPort?.on("message", (msg: ContentCheckMessage) => {
    if (msg.kind === "advance") {
      growing.get(msg.id)?.advance(msg.available);
      return;
    }
    if (msg.kind === "cancel") {
      growing.get(msg.id)?.cancel(new Error(msg.reason));
      return;
    }
    // Registered now, so the advances that follow the request find it.
    const file = msg.available === undefined ? undefined : growingFile(msg.available);
    if (file !== undefined) growing.set(msg.id, file);
    void ready
      .catch(() => undefined)
      .then(() => check(msg, file))
      .then((reply) => {
        growing.delete(msg.id);
        parentPort?.postMessage(reply);
      });
  });
}
