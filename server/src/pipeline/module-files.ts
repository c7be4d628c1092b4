/**
 * A module whose inputs are files: where each client's two factors lie, so
 * that a merge worker reads them itself, synchronously and again on every
 * pass, instead of being handed every client's factors (`ModuleSource`).
 */
import type { MergeRunner, ModuleFiles, TimedResult } from "../core/merge-runner.ts";
import { streamableOptions } from "../merge/methods/streamed.ts";
import type { MergeOptions } from "../merge/options.ts";
import type { ModuleGroup, ModuleMergeResult } from "../merge/types.ts";
import { openFiles } from "../peft/file-read.ts";
import type { LazyAdapter } from "../peft/lazy-adapter.ts";
import { readTensorSync } from "../peft/tensor-location.ts";

/** Module `name` of `inputs` as files, or `undefined` when an input is not read from a file. */
export function moduleFiles(inputs: readonly LazyAdapter[], name: string): ModuleFiles | undefined {
  const clients: ModuleFiles["clients"][number][] = [];
  for (const input of inputs) {
    const plan = input.modules.get(name);
    const a = plan && input.locate?.(plan.aName);
    const b = plan && input.locate?.(plan.bName);
    if (plan === undefined || a === undefined || b === undefined) return undefined;
    clients.push({ rank: plan.rank, scaling: plan.scaling, a, b });
  }
  const first = inputs[0]?.modules.get(name);
  if (first === undefined) return undefined;
  return { name, dIn: first.dIn, dOut: first.dOut, clients };
}

/** Every client's factors of `files`, read into arrays of their own (fresh, so a pool may take them). */
export function readModuleGroup(files: ModuleFiles): ModuleGroup {
  const open = openFiles();
  try {
    return {
      name: files.name,
      dIn: files.dIn,
      dOut: files.dOut,
      clients: files.clients.map((c) => ({
        rank: c.rank,
        scaling: c.scaling,
        a: readTensorSync(c.a, open.fd(c.a.path)),
        b: readTensorSync(c.b, open.fd(c.b.path)),
      })),
    };
  } finally {
    open.close();
  }
}

/**
 * Merges the module `files` on `pool`: read by the pool's workers on every
 * pass when the pool and the method allow it (`MergeRunner.mergeFiles`),
 * else read here whole and handed over.
 *
 * @example
 * const { result } = await mergeModuleFiles(pool, files, resolveOptions({ method: "ties" }));
 */
export function mergeModuleFiles(
  pool: MergeRunner,
  files: ModuleFiles,
  opts: MergeOptions,
): Promise<TimedResult<ModuleMergeResult>> {
  if (pool.readsFiles && streamableOptions(files, opts)) return pool.mergeFiles(files, opts);
  return pool.mergeModule(readModuleGroup(files), opts, { transfer: true });
}
