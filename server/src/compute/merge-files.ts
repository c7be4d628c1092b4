/** Merging a module whose inputs are files, in the thread that calls it (a merge worker, or in-process). */
import type { ModuleFiles } from "../core/merge-runner.ts";
import { mergeStreamed } from "../merge/methods/streamed.ts";
import type { MergeOptions } from "../merge/options.ts";
import type { ModuleMergeResult } from "../merge/types.ts";
import { fileModuleSource } from "./file-module-source.ts";

/** Merges `files` from a source that reads them again on every pass (`mergeStreamed`). */
export function mergeFiles(files: ModuleFiles, opts: MergeOptions): ModuleMergeResult {
  const source = fileModuleSource(files);
  try {
    return mergeStreamed(source, opts);
  } finally {
    source.close();
  }
}
