/**
 * Tensor backend selection, done once per thread at start-up: `tensorflow`
 * (tfjs-node-gpu, then tfjs-node, when installed and loadable) → `webgpu`
 * (Dawn, when it finds a GPU — not a software rasteriser — or when asked
 * for) → `blas` (the products on native BLAS, `blas-device.ts`, when it
 * loads and `TRIBUTARY_LAPACK` is not `off`) → `wasm` (SIMD, one thread) →
 * `cpu`; under `webgpu` and `blas` the few other tfjs ops run on wasm (or
 * cpu). And the float64 decompositions:
 * native LAPACK when it loads (`lapack.ts`), else the JS ones. The merge
 * core only uses `@tensorflow/tfjs-core` ops and the decompositions it is
 * given, and never loads a backend itself.
 */
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import type { RunnerBackend } from "../core/merge-runner.ts";
import { stridedGemm, useMatmulDevice } from "../merge/kernels/device-matmul.ts";
import { loadBlasDevice } from "./blas-device.ts";
import { blasLibrary, installDecompositions } from "./lapack.ts";
import { startWebgpuDevice, type WebgpuStart } from "./webgpu-device.ts";

/** Backends in order of preference. */
export const BACKENDS = ["tensorflow", "webgpu", "blas", "wasm", "cpu"] as const;

/** One of {@link BACKENDS}. */
export type BackendName = (typeof BACKENDS)[number];

/** Which backend runs, and why the better ones did not (the merge-runner port's `RunnerBackend`, named). */
export interface BackendInfo extends RunnerBackend {
  readonly name: BackendName;
}

const require = createRequire(import.meta.url);
let selected: Promise<BackendInfo> | undefined;

async function tryNative(pkg: string): Promise<string | null> {
  try {
    await import(pkg);
    if (await tf.setBackend("tensorflow")) return null;
    return `${pkg}: setBackend("tensorflow") failed`;
  } catch (err) {
    if (err instanceof Error && "code" in err && err.code === "ERR_MODULE_NOT_FOUND")
      return `${pkg} not installed`;
    const msg = err instanceof Error ? err.message.split("\n")[0] : String(err);
    return `${pkg}: ${msg}`;
  }
}

async function tryWasm(): Promise<string | null> {
  try {
    const wasm = await import("@tensorflow/tfjs-backend-wasm");
    // In Node the .wasm binaries are read from the package's dist folder.
    const distDir = dirname(require.resolve("@tensorflow/tfjs-backend-wasm"));
    wasm.setWasmPaths(`${join(distDir)}/`);
    if (await tf.setBackend("wasm")) return null;
    return "@tensorflow/tfjs-backend-wasm: setBackend failed";
  } catch (err) {
    return `@tensorflow/tfjs-backend-wasm: ${err instanceof Error ? err.message : String(err)}`;
  }
}

/**
 * Selects and initialises the best available backend for this thread.
 * `TRIBUTARY_BACKEND=tensorflow|webgpu|blas|wasm|cpu` forces one (start-up fails if it
 * cannot load). Idempotent: later calls return the first result.
 *
 * @example
 * const info = await selectBackend();
 * log.info(`tensor backend: ${info.name} (${info.provider})`);
 */
export function selectBackend(forced = process.env.TRIBUTARY_BACKEND): Promise<BackendInfo> {
  selected ??= select(forced as BackendName | undefined);
  return selected;
}

async function select(forced: BackendName | undefined): Promise<BackendInfo> {
  const skipped: string[] = [];
  const linalg = await installDecompositions();
  if (linalg.skipped !== undefined) skipped.push(linalg.skipped);
  const done = (info: Omit<BackendInfo, "linalg" | "stridedProducts">) =>
    ready({ ...info, linalg: linalg.name, stridedProducts: stridedGemm() !== undefined });
  const want = (b: BackendName) => forced === undefined || forced === b;
  if (forced !== undefined && !(BACKENDS as readonly string[]).includes(forced)) {
    throw new Error(`TRIBUTARY_BACKEND=${forced} is not one of ${BACKENDS.join(", ")}`);
  }
  if (want("tensorflow")) {
    for (const pkg of ["@tensorflow/tfjs-node-gpu", "@tensorflow/tfjs-node"]) {
      const why = await tryNative(pkg);
      if (why === null) return done({ name: "tensorflow", provider: pkg, skipped });
      skipped.push(why);
    }
  }
  if (want("webgpu")) {
    const gpu = await webgpu(forced === "webgpu");
    if (gpu.ok) {
      useMatmulDevice(gpu.device);
      await besideDevice();
      return done({
        name: "webgpu",
        provider: "webgpu (Dawn) + @tensorflow/tfjs-backend-webgpu",
        adapter: gpu.device.adapter.description,
        skipped,
      });
    }
    if (forced === "webgpu") throw new Error(`TRIBUTARY_BACKEND=webgpu but ${gpu.reason}`);
    skipped.push(gpu.reason);
  }
  if (want("blas")) {
    const blas = await nativeBlas();
    if (blas.ok) {
      useMatmulDevice(blas.device);
      await besideDevice();
      return done({ name: "blas", provider: `cblas_sgemm in ${blasLibrary()} (koffi)`, skipped });
    }
    if (forced === "blas") throw new Error(`TRIBUTARY_BACKEND=blas but ${blas.reason}`);
    skipped.push(blas.reason);
  }
  if (want("wasm")) {
    const why = await tryWasm();
    if (why === null) return done({ name: "wasm", provider: "@tensorflow/tfjs-backend-wasm", skipped });
    skipped.push(why);
  }
  if (want("cpu")) {
    await import("@tensorflow/tfjs-backend-cpu");
    if (await tf.setBackend("cpu"))
      return done({ name: "cpu", provider: "@tensorflow/tfjs-backend-cpu", skipped });
    skipped.push("@tensorflow/tfjs-backend-cpu: setBackend failed");
  }
  throw new Error(`no TensorFlow.js backend could be loaded: ${skipped.join("; ")}`);
}

/** Where the tfjs ops other than the products run when a matmul device takes those: wasm, else cpu. */
async function besideDevice(): Promise<void> {
  if ((await tryWasm()) !== null) {
    await import("@tensorflow/tfjs-backend-cpu");
    await tf.setBackend("cpu");
  }
}

/** The BLAS matmul device, unless `TRIBUTARY_LAPACK=off` (one switch for the native libraries). */
async function nativeBlas(): ReturnType<typeof loadBlasDevice> {
  if (process.env.TRIBUTARY_LAPACK === "off") return { ok: false, reason: "BLAS off (TRIBUTARY_LAPACK=off)" };
  return loadBlasDevice();
}

let gpuStart: { readonly allowSoftware: boolean; readonly start: Promise<WebgpuStart> } | undefined;

/**
 * This thread's WebGPU device, started once; a software adapter only when
 * `allowSoftware`. A refusal is not kept (a later call may allow it), and a
 * device started allowing software is not handed to a caller that does not.
 */
async function webgpu(allowSoftware: boolean): Promise<WebgpuStart> {
  if (gpuStart === undefined || (gpuStart.allowSoftware && !allowSoftware)) {
    gpuStart = { allowSoftware, start: startWebgpuDevice({ allowSoftware }) };
  }
  const r = await gpuStart.start;
  if (!r.ok) gpuStart = undefined;
  return r;
}

/**
 * Switches this thread to backend `name` if it can be loaded (for tests that
 * run one numeric suite on every backend; `webgpu` accepts a software
 * adapter). Returns false when it cannot.
 */
export async function useBackend(name: BackendName): Promise<boolean> {
  if (name === "webgpu") {
    const gpu = await webgpu(true);
    if (!gpu.ok) return false;
    useMatmulDevice(gpu.device);
    return true;
  }
  if (name === "blas") {
    const blas = await nativeBlas();
    if (!blas.ok) return false;
    useMatmulDevice(blas.device);
    await besideDevice();
    return true;
  }
  useMatmulDevice(undefined);
  if (name === "tensorflow") {
    for (const pkg of ["@tensorflow/tfjs-node-gpu", "@tensorflow/tfjs-node"]) {
      if ((await tryNative(pkg)) === null) return true;
    }
    return false;
  }
  if (name === "wasm") {
    if ((await tryWasm()) !== null) return false;
    await tf.ready();
    return true;
  }
  await import("@tensorflow/tfjs-backend-cpu");
  const ok = await tf.setBackend("cpu");
  await tf.ready();
  return ok;
}

async function ready(info: BackendInfo): Promise<BackendInfo> {
  await tf.ready();
  return info;
}

/** Why WebGPU cannot start here (`undefined` when it can), for test messages. */
export async function webgpuUnavailable(): Promise<string | undefined> {
  const gpu = await webgpu(true);
  return gpu.ok ? undefined : gpu.reason;
}
