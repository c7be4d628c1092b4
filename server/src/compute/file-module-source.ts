/**
 * A module's inputs read from their files: each client's factors read again,
 * synchronously, on every pass (a merge worker reads them itself instead of
 * being handed every client's factors).
 */
import type { ModuleFiles } from "../core/merge-runner.ts";
import type { ModuleSource } from "../merge/types.ts";
import { openFiles } from "../peft/file-read.ts";
import { readTensorSync } from "../peft/tensor-location.ts";

/**
 * A source reading `files` (each file opened once; `close()` releases them).
 * Each factor is read into one scratch buffer per factor kind, so a read's
 * array is valid until the next read of the same kind, and is checked for
 * NaN/Inf the first time it is read.
 */
export function fileModuleSource(files: ModuleFiles): ModuleSource & { close(): void } {
  const open = openFiles();
  const largest = (f: "a" | "b") => Math.max(0, ...files.clients.map((c) => c[f].byteLength));
  const scratch = { a: new Uint8Array(largest("a") + 8), b: new Uint8Array(largest("b") + 8) };
  const checked = { a: new Set<number>(), b: new Set<number>() };
  return {
    name: files.name,
    dIn: files.dIn,
    dOut: files.dOut,
    clients: files.clients.map((c) => ({ rank: c.rank, scaling: c.scaling })),
    read(i, factor) {
      const loc = files.clients[i][factor];
      const data = readTensorSync(loc, open.fd(loc.path), scratch[factor], !checked[factor].has(i));
      checked[factor].add(i);
      return data;
    },
    close: () => open.close(),
  };
}
