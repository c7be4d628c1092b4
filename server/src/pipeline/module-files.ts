/**
 * A module whose inputs are files: where each client's two factors lie, so
 * that a merge worker reads them itself, synchronously and again on every
 * pass, instead of being handed every client's factors (`ModuleSource`).
 */
import { closeSync, openSync } from "node:fs";
import type { ModuleSource } from "../merge/types.ts";
import type { LazyAdapter } from "../peft/lazy-adapter.ts";
import { readTensorSync, type TensorLocation } from "../peft/tensor-location.ts";

/** One module of every input, as file locations (it crosses to a worker thread). */
export interface ModuleFiles {
  readonly name: string;
  readonly dIn: number;
  readonly dOut: number;
  readonly clients: readonly {
    readonly rank: number;
    readonly scaling: number;
    readonly a: TensorLocation;
    readonly b: TensorLocation;
  }[];
}

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

/**
 * A source reading `files` (each file opened once; `close()` releases them).
 * Each factor is read into one scratch buffer per factor kind, so a read's
 * array is valid until the next read of the same kind, and is checked for
 * NaN/Inf the first time it is read.
 */
export function fileModuleSource(files: ModuleFiles): ModuleSource & { close(): void } {
  const fds = new Map<string, number>();
  const largest = (f: "a" | "b") => Math.max(0, ...files.clients.map((c) => c[f].byteLength));
  const scratch = { a: new Uint8Array(largest("a") + 8), b: new Uint8Array(largest("b") + 8) };
  const checked = { a: new Set<number>(), b: new Set<number>() };
  const fdOf = (path: string): number => {
    let fd = fds.get(path);
    if (fd === undefined) {
      fd = openSync(path, "r");
      fds.set(path, fd);
    }
    return fd;
  };
  return {
    name: files.name,
    dIn: files.dIn,
    dOut: files.dOut,
    clients: files.clients.map((c) => ({ rank: c.rank, scaling: c.scaling })),
    read(i, factor) {
      const loc = files.clients[i][factor];
      const data = readTensorSync(loc, fdOf(loc.path), scratch[factor], !checked[factor].has(i));
      checked[factor].add(i);
      return data;
    },
    close() {
      for (const fd of fds.values()) closeSync(fd);
      fds.clear();
    },
  };
}
