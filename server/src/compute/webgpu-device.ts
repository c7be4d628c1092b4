/**
 * The merge engine's matmul device on WebGPU: a Dawn thread
 * (`webgpu-thread.ts`) runs TensorFlow.js's webgpu backend, and this
 * thread's synchronous merge code calls it through a `MessageChannel`,
 * blocking on a shared flag (`Atomics.wait`) and taking the answer with
 * `receiveMessageOnPort`. Matrices cross by copy; resident ones stay on the
 * GPU under an id. On a machine without a GPU, Mesa's lavapipe (CPU Vulkan,
 * Mesa ≥ 24) runs the same path, which is how CI tests it.
 */
import { readdirSync } from "node:fs";
import { MessageChannel, receiveMessageOnPort, Worker } from "node:worker_threads";
import { type F32Mat, f32, type MatmulDevice, type ResidentMatrix } from "../merge/kernels/device-matmul.ts";
import type { GpuAdapterInfo, GpuReply, GpuRequest } from "./webgpu-protocol.ts";

/** A started WebGPU device. */
export interface WebgpuDevice extends MatmulDevice {
  readonly adapter: GpuAdapterInfo;
  close(): Promise<void>;
}

/** What starting WebGPU gave: the device, or why not. */
export type WebgpuStart =
  | { readonly ok: true; readonly device: WebgpuDevice }
  | { readonly ok: false; readonly reason: string };

/** Longest wait for one answer of the Dawn thread (a product, an upload). */
const CALL_TIMEOUT_MS = 10 * 60_000;
/** Longest wait for Dawn to find an adapter and tfjs to start on it. */
const START_TIMEOUT_MS = 60_000;

/** Whether the machine exposes a GPU to user space (DRM render nodes, NVIDIA devices). */
export function hasGpuDeviceNode(): boolean {
  const list = (dir: string) => {
    try {
      return readdirSync(dir);
    } catch {
      return [];
    }
  };
  return (
    list("/dev/dri").some((f) => f.startsWith("renderD")) || list("/dev").some((f) => /^nvidia\d+$/.test(f))
  );
}

/** `Atomics.waitAsync` (ES2024; Node ≥ 16) on slot 0 while it is 0. */
function waitAsync(signal: Int32Array, ms: number): Promise<string> {
  const wait = (
    Atomics as unknown as {
      waitAsync(a: Int32Array, i: number, v: number, t: number): { value: Promise<string> | string };
    }
  ).waitAsync(signal, 0, 0, ms);
  return Promise.resolve(wait.value);
}

function threadEntry(): URL {
  const fromSource = import.meta.url.endsWith(".ts");
  return new URL(fromSource ? "./webgpu-thread-entry.mjs" : "./webgpu-thread.js", import.meta.url);
}

/**
 * Starts a Dawn thread and TensorFlow.js's webgpu backend on the best
 * adapter Dawn finds. Resolves with the reason when the `webgpu` package,
 * a Vulkan driver or an adapter is missing — or when the adapter is a
 * software rasteriser and `allowSoftware` is false (no device is created
 * then).
 *
 * @example
 * const r = await startWebgpuDevice({ allowSoftware: false });
 * if (r.ok) useMatmulDevice(r.device);
 */
export async function startWebgpuDevice(opts: { allowSoftware: boolean }): Promise<WebgpuStart> {
  if (!opts.allowSoftware && !hasGpuDeviceNode()) {
    // Without a GPU device node only a software rasteriser could answer: do
    // not load Dawn (its start-up costs time and prints driver warnings).
    return {
      ok: false,
      reason: "webgpu: no GPU device (/dev/dri/renderD*, /dev/nvidia*); TRIBUTARY_BACKEND=webgpu forces it",
    };
  }
  try {
    await import("webgpu");
    await import("@tensorflow/tfjs-backend-webgpu");
  } catch (err) {
    const why = err instanceof Error ? err.message.split("\n")[0] : String(err);
    return { ok: false, reason: `webgpu: packages not installed (${why})` };
  }
  // Mesa and the Vulkan loader want a runtime directory (set it before Dawn loads).
  process.env.XDG_RUNTIME_DIR ??= "/tmp";
  const signal = new Int32Array(new SharedArrayBuffer(4));
  const { port1, port2 } = new MessageChannel();
  const worker = new Worker(threadEntry(), {
    workerData: { port: port2, signal, allowSoftware: opts.allowSoftware },
    transferList: [port2],
    stdout: false,
  });
  let exited: string | undefined;
  worker.once("error", (err) => {
    exited = err.message;
  });
  worker.once("exit", (code) => {
    exited ??= `the Dawn thread exited with code ${code}`;
  });
  const close = async () => {
    port1.close();
    await worker.terminate();
  };
  Atomics.store(signal, 0, 0);
  const started = await waitAsync(signal, START_TIMEOUT_MS);
  const first = receiveMessageOnPort(port1)?.message as GpuReply | undefined;
  if (started === "timed-out" || first === undefined || !first.ok || !("info" in first)) {
    await close();
    const why =
      first !== undefined && !first.ok
        ? first.error
        : (exited ?? `no answer within ${START_TIMEOUT_MS / 1000} s`);
    return { ok: false, reason: `webgpu: ${why}` };
  }
  const adapter = first.info;
  // Started: the thread no longer keeps the process alive (calls block on it).
  worker.unref();

  const call = (req: GpuRequest): GpuReply & { ok: true } => {
    if (exited !== undefined) throw new Error(`webgpu: ${exited}`);
    Atomics.store(signal, 0, 0);
    port1.postMessage(req);
    // Wait for the flag itself, not for a notification: the previous answer's
    // notify can land after this call cleared the flag, and wake it early.
    const deadline = Date.now() + CALL_TIMEOUT_MS;
    while (Atomics.load(signal, 0) === 0) {
      const left = deadline - Date.now();
      if (left <= 0 || Atomics.wait(signal, 0, 0, left) === "timed-out") {
        throw new Error(`webgpu: no answer to ${req.op} within ${CALL_TIMEOUT_MS / 1000} s`);
      }
    }
    const reply = receiveMessageOnPort(port1)?.message as GpuReply | undefined;
    if (reply === undefined) throw new Error(`webgpu: the Dawn thread signalled ${req.op} without an answer`);
    if (!reply.ok) throw new Error(`webgpu: ${req.op} failed: ${reply.error}`);
    return reply;
  };
  const product = (reply: GpuReply, rows: number, cols: number): F32Mat => {
    const data = "product" in reply ? reply.product : undefined;
    if (data === undefined) throw new Error("webgpu: an answer without its product");
    return f32(rows, cols, data);
  };
  let nextId = 1;
  const device: WebgpuDevice = {
    name: `webgpu (${adapter.description || adapter.device || adapter.vendor})`,
    adapter,
    gemm: (a, b) => product(call({ op: "gemm", a, b }), a.rows, b.cols),
    resident(m): ResidentMatrix {
      const id = nextId++;
      call({ op: "upload", id, m });
      const check = (x: F32Mat, ok: boolean) => {
        if (!ok)
          throw new RangeError(`resident: ${m.rows}×${m.cols} and ${x.rows}×${x.cols} do not multiply`);
      };
      return {
        rows: m.rows,
        cols: m.cols,
        times(x) {
          check(x, x.rows === m.cols);
          return product(call({ op: "times", id, x }), m.rows, x.cols);
        },
        timesFrom(x) {
          check(x, x.cols === m.rows);
          return product(call({ op: "timesFrom", id, x }), x.rows, m.cols);
        },
        timesWithGram(x, gram) {
          check(x, x.rows === m.cols);
          if (gram === "xtp" && m.rows !== m.cols)
            throw new RangeError(`resident: xᵀP needs a square matrix, not ${m.rows}×${m.cols}`);
          const reply = call({ op: "times", id, x, gram });
          const g = "gram" in reply ? reply.gram : undefined;
          if (g === undefined) throw new Error("webgpu: an answer without its Gram");
          return { product: product(reply, m.rows, x.cols), gram: f32(x.cols, x.cols, g) };
        },
        dispose() {
          if (exited === undefined) port1.postMessage({ op: "dispose", id } satisfies GpuRequest);
        },
      };
    },
    close,
  };
  return { ok: true, device };
}
