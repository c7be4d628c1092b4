/**
 * Runs a numeric test suite on every tensor backend that loads here
 * (STYLE.md §9: one suite, every implementation): wasm and cpu always,
 * webgpu too — on a GPU, or on Mesa's lavapipe (CPU Vulkan) where there is
 * none — blas (native BLAS), and tensorflow when tfjs-node is installed.
 * WebGPU or BLAS missing is an error naming what to install, not a skip;
 * `TRIBUTARY_TEST_WEBGPU=off` and `TRIBUTARY_LAPACK=off` leave them out on
 * purpose.
 */
import { BACKENDS, type BackendName, useBackend, webgpuUnavailable } from "../compute/backend.ts";

/** Backends that load on this machine (wasm, cpu, webgpu and blas at least). */
export async function loadableBackends(): Promise<BackendName[]> {
  const out: BackendName[] = [];
  for (const b of BACKENDS) {
    if (b === "webgpu" && process.env.TRIBUTARY_TEST_WEBGPU === "off") continue;
    if (b === "blas" && process.env.TRIBUTARY_LAPACK === "off") continue;
    if (await useBackend(b)) out.push(b);
    else if (b === "blas") {
      throw new Error(
        "the numeric suite runs on native BLAS too, but libblas.so.3 (or koffi) does not load (bash scripts/setup.sh installs libopenblas0-pthread; TRIBUTARY_LAPACK=off leaves it out)",
      );
    } else if (b === "webgpu") {
      throw new Error(
        `the numeric suite runs on webgpu too, but ${await webgpuUnavailable()} (bash scripts/setup.sh installs Mesa's lavapipe from backports; TRIBUTARY_TEST_WEBGPU=off leaves webgpu out)`,
      );
    }
  }
  return out;
}

/** Activates `name` for the tests that follow. */
export async function activate(name: BackendName): Promise<void> {
  if (!(await useBackend(name))) throw new Error(`backend ${name} failed to load`);
}
