/**
 * A module whose inputs are files: where each client's two factors lie, so
 * that a merge worker reads them itself, synchronously and again on every
 * pass, instead of being handed every client's factors (`ModuleSource`).
 */
import type { ModuleFiles } from "../core/merge-runner.ts";
import type { LazyAdapter } from "../peft/lazy-adapter.ts";

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
