/**
 * In-process merge of demo adapters with the real merge engine, module by
 * module, the way the coordinator's round merge does it (first input's config
 * as the template, F32 output, sample counts as FedAvg weights). For the
 * coordinator-free simulation and tests; the demo proper merges on the
 * coordinator.
 */
import { mergeModule } from "../../merge/engine.ts";
import { type MergeOptions, resolveOptions } from "../../merge/options.ts";
import type { ModuleGroup } from "../../merge/types.ts";
import { decodeAdapter, encodeAdapter, type OutputModule } from "../../peft/index.ts";
import type { AdapterFiles } from "./adapter-files.ts";

/** How to merge: a method with optional engine options (`rank`, `k`, …). */
export type LocalMergeOptions = Omit<Partial<MergeOptions>, "method" | "samples"> & {
  readonly method: string;
};

/**
 * Merges the nodes' adapters; `samples[i]` is node `i`'s sample count.
 *
 * @example
 * const merged = mergeAdapterFiles(results.map((r) => r.adapter), results.map((r) => r.samples), { method: "from" });
 */
export function mergeAdapterFiles(
  adapters: readonly AdapterFiles[],
  samples: readonly number[],
  options: LocalMergeOptions,
): AdapterFiles {
  if (adapters.length === 0) throw new RangeError("mergeAdapterFiles: no adapters");
  const opts = resolveOptions({ ...options, samples });
  const inputs = adapters.map((f, i) => decodeAdapter(f.configJson, f.safetensors, `node-${i}`));
  const modules = new Map<string, OutputModule>();
  for (const [name, first] of inputs[0].modules) {
    const group: ModuleGroup = {
      name,
      dIn: first.dIn,
      dOut: first.dOut,
      clients: inputs.map((input) => {
        const m = input.modules.get(name);
        if (m === undefined) throw new RangeError(`${input.label}: module ${name} is missing`);
        return { a: m.a, b: m.b, rank: m.rank, scaling: m.scaling };
      }),
    };
    const { merged } = mergeModule(group, opts);
    modules.set(name, { a: merged.a, b: merged.b, rank: merged.rank, layout: first.layout });
  }
  const { configText, safetensors } = encodeAdapter({
    template: inputs[0].config,
    modules,
    dense: new Map(),
    dtype: "F32",
  });
  return { configJson: configText, safetensors };
}
