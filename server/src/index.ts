/**
 * Public API of `@tributary/server`: the merge engine, PEFT adapter I/O and
 * the worker-thread merge pool.
 *
 * @example
 * import { createMergePool, mergeAdapters, readAdapter, resolveOptions } from "@tributary/server";
 * const inputs = await Promise.all(["c1", "c2"].map(readAdapter));
 * const pool = await createMergePool();
 * const outcome = await mergeAdapters(inputs, resolveOptions({ method: "from", rank: 16 }), pool);
 * await pool.close();
 */
export { type BackendInfo, type BackendName, selectBackend } from "./compute/backend.ts";
export { createMergePool, type MergePoolOptions } from "./compute/merge-pool.ts";
export type { MergeRunner, ModuleCallback, RunnerBackend, TimedResult } from "./core/merge-runner.ts";
export { mergeDenseTensor, mergeModule } from "./merge/engine.ts";
export { MergeInputError, MergeOptionsError } from "./merge/errors.ts";
export {
  defaultOptions,
  METHODS,
  type MergeOptions,
  type MethodName,
  resolveOptions,
} from "./merge/options.ts";
export type {
  ClientLora,
  DenseGroup,
  DenseMergeResult,
  MergedLora,
  ModuleGroup,
  ModuleMergeResult,
  ModuleReport,
} from "./merge/types.ts";
export {
  AdapterFormatError,
  type AdapterOutput,
  decodeAdapter,
  encodeAdapter,
  type PeftAdapter,
  readAdapter,
  type TensorDType,
  writeAdapter,
} from "./peft/index.ts";
export {
  type AdapterInput,
  checkCompatible,
  type MergeOutcome,
  mergeAdapters,
} from "./pipeline/merge-adapters.ts";
