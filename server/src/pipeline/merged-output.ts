/**
 * A finished merge as a PEFT adapter to write: every merged module in the
 * layout of the first input (tensor names and shapes as it stored them), the
 * first input's config as the template, and the merged dense tensors.
 */
import type { AdapterConfig, AdapterOutput, LoraLayout, OutputModule, TensorDType } from "../peft/index.ts";
import type { MergeOutcome } from "./merge-adapters.ts";

/** What the output borrows from the first input (an eager or a lazy adapter both fit). */
export interface LayoutSource {
  readonly config: AdapterConfig;
  readonly modules: ReadonlyMap<string, { readonly layout: LoraLayout }>;
  /** Write every module at this LoRA scaling (`AdapterOutput.scaling`); absent: keep the config's `lora_alpha`. */
  readonly scaling?: number;
}

/**
 * The adapter `encodeAdapter` / `writeAdapter` take for `outcome`.
 *
 * @example
 * await writeAdapter(dir, mergedOutput(inputs[0], outcome, "BF16", { tributary_method: "from" }));
 */
export function mergedOutput(
  first: LayoutSource,
  outcome: MergeOutcome,
  dtype: TensorDType,
  metadata: Record<string, string>,
): AdapterOutput {
  const modules = new Map<string, OutputModule>();
  for (const [name, entry] of outcome.modules) {
    const m = entry.result.merged;
    modules.set(name, { a: m.a, b: m.b, rank: m.rank, layout: first.modules.get(name)!.layout });
  }
  const dense = new Map([...outcome.dense].map(([name, d]) => [name, { shape: d.shape, data: d.data }]));
  return {
    template: first.config,
    modules,
    dense,
    dtype,
    metadata,
    ...(first.scaling !== undefined ? { scaling: first.scaling } : {}),
  };
}
