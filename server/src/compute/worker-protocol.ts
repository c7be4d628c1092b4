/** Messages between the merge pool and its worker threads, and error (de)serialisation. */
import { AdapterFormatError } from "@tributary/protocol";
import type { ModuleFiles } from "../core/merge-runner.ts";
import { MergeInputError, MergeOptionsError } from "../merge/errors.ts";
import type { MergeOptions } from "../merge/options.ts";
import type { DenseGroup, DenseMergeResult, ModuleGroup, ModuleMergeResult } from "../merge/types.ts";
import type { BackendInfo } from "./backend.ts";

/** A job for a worker. */
export type WorkerRequest =
  | { readonly id: number; readonly kind: "init" }
  | { readonly id: number; readonly kind: "module"; readonly group: ModuleGroup; readonly opts: MergeOptions }
  | { readonly id: number; readonly kind: "files"; readonly files: ModuleFiles; readonly opts: MergeOptions }
  | { readonly id: number; readonly kind: "dense"; readonly group: DenseGroup; readonly opts: MergeOptions };

/** An error as it crosses the thread boundary. */
export interface SerializedError {
  readonly name: string;
  readonly message: string;
  readonly module?: string;
  readonly client?: number;
  /** `AdapterFormatError`'s file and tensor. */
  readonly file?: string;
  readonly tensor?: string;
  /** A system error's code (`ENOSPC`, `EIO`, …), which the merge's retry looks at. */
  readonly code?: string;
}

/** A worker's answer. */
export type WorkerReply =
  | { readonly id: number; readonly ok: true; readonly kind: "init"; readonly backend: BackendInfo }
  | {
      readonly id: number;
      readonly ok: true;
      readonly kind: "module";
      readonly result: ModuleMergeResult;
      readonly ms: number;
    }
  | {
      readonly id: number;
      readonly ok: true;
      readonly kind: "dense";
      readonly result: DenseMergeResult;
      readonly ms: number;
    }
  | { readonly id: number; readonly ok: false; readonly error: SerializedError };

/** Flattens an error for `postMessage`. */
export function serializeError(err: unknown): SerializedError {
  if (err instanceof MergeInputError)
    return { name: err.name, message: err.message, module: err.module, client: err.client };
  if (err instanceof AdapterFormatError)
    return {
      name: err.name,
      message: err.message,
      file: err.file,
      ...(err.tensor ? { tensor: err.tensor } : {}),
    };
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return { name: err.name, message: err.message, ...(typeof code === "string" ? { code } : {}) };
  }
  return { name: "Error", message: String(err) };
}

/** Rebuilds a typed error from its serialised form. */
export function deserializeError(e: SerializedError): Error {
  if (e.name === "MergeInputError") return new MergeInputError(e.message, e.module, e.client);
  if (e.name === "MergeOptionsError") return new MergeOptionsError(e.message);
  if (e.name === "AdapterFormatError" && e.file !== undefined)
    return new AdapterFormatError(e.message, e.file, e.tensor);
  const err = new Error(e.message) as Error & { code?: string };
  err.name = e.name;
  if (e.code !== undefined) err.code = e.code;
  return err;
}

/** `f()`'s result and how long it took (ms): what a merge request answers with, in a worker or in-process. */
export function timed<T>(f: () => T): { readonly result: T; readonly ms: number } {
  const t0 = performance.now();
  const result = f();
  return { result, ms: performance.now() - t0 };
}
