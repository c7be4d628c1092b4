/**
 * Worker-thread side of the merge pool: selects the tensor backend once,
 * then merges the modules it is sent. Results go back with their buffers
 * transferred (no copy).
 */
import { parentPort, workerData } from "node:worker_threads";
import { mergeDenseTensor, mergeModule } from "../merge/engine.ts";
import { selectBackend } from "./backend.ts";
import { mergeFiles } from "./merge-files.ts";
import { serializeError, timed, type WorkerReply, type WorkerRequest } from "./worker-protocol.ts";

const port = parentPort;
if (port === null) throw new Error("merge-worker.ts must run in a worker thread");

const ready = selectBackend((workerData as { backend?: string } | undefined)?.backend);

port.on("message", async (req: WorkerRequest) => {
  let reply: WorkerReply;
  try {
    const backend = await ready;
    if (req.kind === "init") {
      reply = { id: req.id, ok: true, kind: "init", backend };
    } else if (req.kind === "module") {
      reply = { id: req.id, ok: true, kind: "module", ...timed(() => mergeModule(req.group, req.opts)) };
    } else if (req.kind === "files") {
      reply = { id: req.id, ok: true, kind: "module", ...timed(() => mergeFiles(req.files, req.opts)) };
    } else {
      reply = { id: req.id, ok: true, kind: "dense", ...timed(() => mergeDenseTensor(req.group, req.opts)) };
    }
  } catch (err) {
    reply = { id: req.id, ok: false, error: serializeError(err) };
  }
  const transfer: ArrayBuffer[] = [];
  if (reply.ok && reply.kind === "module")
    transfer.push(reply.result.merged.a.buffer as ArrayBuffer, reply.result.merged.b.buffer as ArrayBuffer);
  if (reply.ok && reply.kind === "dense") transfer.push(reply.result.data.buffer as ArrayBuffer);
  port.postMessage(reply, transfer);
});
