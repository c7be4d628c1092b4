/** Messages between a merge thread and its Dawn (WebGPU) thread. */

/** A request to the Dawn thread. */
export type GpuRequest =
  | { readonly op: "gemm"; readonly a: GpuMat; readonly b: GpuMat }
  | { readonly op: "upload"; readonly id: number; readonly m: GpuMat }
  | {
      readonly op: "times";
      readonly id: number;
      readonly x: GpuMat;
      /** Also return `xᵀ P` or `Pᵀ P` of the product `P`. */
      readonly gram?: "xtp" | "ptp";
    }
  | { readonly op: "timesFrom"; readonly id: number; readonly x: GpuMat }
  | { readonly op: "dispose"; readonly id: number };

/** A matrix as it crosses: row-major float32. */
export interface GpuMat {
  readonly rows: number;
  readonly cols: number;
  readonly data: Float32Array;
}

/** What the adapter says about itself. */
export interface GpuAdapterInfo {
  readonly vendor: string;
  readonly architecture: string;
  readonly device: string;
  readonly description: string;
}

/** The Dawn thread's answer (one per request except `dispose`). */
export type GpuReply =
  | { readonly ok: true; readonly info: GpuAdapterInfo }
  | { readonly ok: true; readonly product?: Float32Array; readonly gram?: Float32Array }
  | { readonly ok: false; readonly error: string };

/** Whether an adapter is a CPU rasteriser (lavapipe, SwiftShader) rather than a GPU. */
export function isSoftwareAdapter(info: GpuAdapterInfo): boolean {
  return (
    info.architecture === "software" ||
    /llvmpipe|lavapipe|swiftshader/i.test(`${info.device} ${info.description} ${info.vendor}`)
  );
}
