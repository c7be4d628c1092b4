/**
 * The inputs of a buffered round's fold (`buffered-rounds.ts`): the global
 * adapter so far (the last published round's, read from the store), and
 * each buffered update scaled by its coefficient `η s(τ_i) w_i`, so that
 * the sum of their task vectors at the federation's rank is the new global
 * adapter.
 */
import { readSafetensorsLayout } from "@tributary/protocol";
import type { AdapterHandle } from "../core/store.ts";
import { type LazyAdapter, lazyAdapter } from "../peft/index.ts";

/** `lazy` with every module's scaling multiplied by `c`: its task vectors are `c · Θ`. */
export function scaledAdapter(lazy: LazyAdapter, c: number): LazyAdapter {
  const modules = new Map(
    [...lazy.modules].map(([name, plan]) => [name, { ...plan, scaling: plan.scaling * c }]),
  );
  return {
    ...lazy,
    modules,
    async loadModule(name) {
      const m = await lazy.loadModule(name);
      return { ...m, scaling: m.scaling * c };
    },
  };
}

/** A stored adapter read module by module (`close` when done). */
export async function openStoredAdapter(
  handle: AdapterHandle,
  label: string,
): Promise<{ readonly lazy: LazyAdapter; close(): Promise<void> }> {
  const reader = await handle.open();
  try {
    const { tensors } = await readSafetensorsLayout((at, n) => reader.read(at, n), handle.size, label);
    const lazy = lazyAdapter(
      handle.configJson,
      tensors,
      async (name) => {
        const t = tensors.get(name)!;
        return reader.read(t.offset, t.byteLength);
      },
      label,
    );
    return { lazy, close: () => reader.close() };
  } catch (err) {
    await reader.close();
    throw err;
  }
}
