/** Messages between the merge pool and its worker threads, and error (de)serialisation. */
import { MergeInputError, MergeOptionsError } from "../merge/errors.ts";
import type { MergeOptions } from "../merge/options.ts";
import type { DenseGroup, DenseMergeResult, ModuleGroup, ModuleMergeResult } from "../merge/types.ts";
import type { BackendInfo } from "./backend.ts";

/** A job for a worker. */
export type WorkerRequest =
  | { readonly id: number; readonly kind: "init" }
  | { readonly id: number; readonly kind: "module"; readonly group: ModuleGroup; readonly opts: MergeOptions }
  | { readonly id: number; readonly kind: "dense"; readonly group: DenseGroup; readonly opts: MergeOptions };

/** An error as it crosses the thread boundary. */
export interface SerializedError {
  readonly name: string;
  readonly message: string;
  readonly module?: string;
  readonly client?: number;
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
  if (err instanceof Error) return { name: err.name, message: err.message };
  return { name: "Error", message: String(err) };
}

/** Rebuilds a typed error from its serialised form. */
export function deserializeError(e: SerializedError): Error {
  if (e.name === "MergeInputError") return new MergeInputError(e.message, e.module, e.client);
  if (e.name === "MergeOptionsError") return new MergeOptionsError(e.message);
  const err = new Error(e.message);
  err.name = e.name;
  return err;
}
