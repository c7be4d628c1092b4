/**
 * The Dawn thread: WebGPU for Node (the `webgpu` package, Dawn prebuilt)
 * under TensorFlow.js's webgpu backend, serving the products of one merge
 * thread that waits on it (`webgpu-device.ts`). Results are read back with
 * the asynchronous `data()` (`dataSync()` needs `OffscreenCanvas` under
 * Node), which is why this runs on a thread of its own: the merge thread's
 * synchronous code blocks on a shared flag while this one awaits.
 *
 * Every answer is posted on the port, then the flag is set and notified.
 */
import { type MessagePort, workerData } from "node:worker_threads";
import {
  type GpuAdapterInfo,
  type GpuMat,
  type GpuReply,
  type GpuRequest,
  isSoftwareAdapter,
} from "./webgpu-protocol.ts";

const { port, signal, allowSoftware } = workerData as {
  port: MessagePort;
  signal: Int32Array;
  allowSoftware: boolean;
};

function answer(reply: GpuReply, transfer: ArrayBuffer[] = []): void {
  port.postMessage(reply, transfer);
  Atomics.store(signal, 0, 1);
  Atomics.notify(signal, 0);
}

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

async function start(): Promise<typeof import("@tensorflow/tfjs-core") | undefined> {
  try {
    const { create, globals } = await import("webgpu");
    Object.assign(globalThis, globals);
    const gpu = create([]);
    const adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
    if (adapter === null || adapter === undefined) {
      answer({ ok: false, error: "Dawn found no WebGPU adapter (no Vulkan driver?)" });
      return undefined;
    }
    const i = adapter.info;
    const info: GpuAdapterInfo = {
      vendor: i.vendor,
      architecture: i.architecture,
      device: i.device,
      description: i.description,
    };
    if (!allowSoftware && isSoftwareAdapter(info)) {
      // Only a CPU rasteriser: refuse it without creating a device.
      answer({
        ok: false,
        error: `only a software adapter (${info.description}); TRIBUTARY_BACKEND=webgpu uses it`,
      });
      return undefined;
    }
    Object.defineProperty(globalThis, "navigator", { value: { gpu }, configurable: true });
    const tf = await import("@tensorflow/tfjs-core");
    await import("@tensorflow/tfjs-backend-webgpu");
    if (!(await tf.setBackend("webgpu"))) {
      answer({ ok: false, error: `tfjs webgpu backend did not start on ${info.description}` });
      return undefined;
    }
    await tf.ready();
    answer({ ok: true, info });
    return tf;
  } catch (err) {
    answer({ ok: false, error: message(err) });
    return undefined;
  }
}

const tf = await start();
if (tf !== undefined) {
  const tensors = new Map<number, import("@tensorflow/tfjs-core").Tensor2D>();
  const tensor = (m: GpuMat) => tf.tensor2d(m.data, [m.rows, m.cols]);
  const read = async (t: import("@tensorflow/tfjs-core").Tensor) => {
    const data = (await t.data()) as Float32Array;
    t.dispose();
    return data;
  };
  const held = (id: number) => {
    const t = tensors.get(id);
    if (t === undefined) throw new Error(`no resident matrix ${id} on the Dawn thread`);
    return t;
  };
  const serve = async (req: GpuRequest): Promise<void> => {
    if (req.op === "dispose") {
      tensors.get(req.id)?.dispose();
      tensors.delete(req.id);
      return;
    }
    try {
      if (req.op === "upload") {
        tensors.set(req.id, tensor(req.m));
        answer({ ok: true });
      } else if (req.op === "gemm") {
        const product = await read(tf.tidy(() => tf.matMul(tensor(req.a), tensor(req.b))));
        answer({ ok: true, product }, [product.buffer as ArrayBuffer]);
      } else if (req.op === "timesFrom") {
        const product = await read(tf.tidy(() => tf.matMul(tensor(req.x), held(req.id))));
        answer({ ok: true, product }, [product.buffer as ArrayBuffer]);
      } else {
        const left = held(req.id);
        const [p, g] = tf.tidy(() => {
          const x = tensor(req.x);
          const prod = tf.matMul(left, x);
          if (req.gram === undefined) return [prod, undefined];
          const t = req.gram === "xtp" ? tf.transpose(x) : tf.transpose(prod);
          return [prod, tf.matMul(t, prod)];
        });
        const product = await read(p);
        const gram = g === undefined ? undefined : await read(g);
        const transfer = [product.buffer as ArrayBuffer, ...(gram ? [gram.buffer as ArrayBuffer] : [])];
        answer({ ok: true, product, ...(gram ? { gram } : {}) }, transfer);
      }
    } catch (err) {
      answer({ ok: false, error: message(err) });
    }
  };
  // Requests are served one at a time, in order.
  let queue = Promise.resolve();
  port.on("message", (req: GpuRequest) => {
    queue = queue.then(() => serve(req));
  });
}
