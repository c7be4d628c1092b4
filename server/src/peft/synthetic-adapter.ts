/**
 * Seeded synthetic PEFT adapters (real files, as a LoRA trainer writes them)
 * for the demo, the CLI tests and the benchmarks: `A` entries of variance
 * `1/dIn`, `B` entries of scale `bScale` (trained `B`s are small).
 */

import type { TensorDType } from "@tributary/protocol";
import { adapterConfigFromObject } from "./adapter-config.ts";
import { writeAdapter } from "./adapter-dir.ts";
import type { LoraLayout, OutputModule } from "./adapter-types.ts";

/** A module to generate: name without the `base_model.model.` prefix. */
export interface SyntheticModuleShape {
  readonly name: string;
  readonly dIn: number;
  readonly dOut: number;
}

/** What `writeSyntheticAdapter` writes. */
export interface SyntheticAdapterSpec {
  readonly modules: readonly SyntheticModuleShape[];
  readonly rank: number;
  /** `lora_alpha` (default `2 · rank`). */
  readonly alpha?: number;
  readonly useRslora?: boolean;
  readonly dtype?: TensorDType;
  readonly seed: number;
  readonly baseModel?: string;
  /** Standard deviation of `B`'s entries (default 0.01). */
  readonly bScale?: number;
}

/** Linear-layer layout under PEFT's `base_model.model.` prefix. */
export function linearLayout(dIn: number, dOut: number): LoraLayout {
  return { kind: "linear", aShape: [dIn], bShape: [dOut], prefix: "base_model.model.", adapterName: "" };
}

/** xorshift32 uniform values of variance `scale²`. */
export function fillUniform(out: Float32Array, seed: number, scale: number): Float32Array {
  let x = seed | 0 || 0x12345678;
  const k = scale * Math.sqrt(3) * 2 ** -31;
  for (let i = 0; i < out.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = (x | 0) * k;
  }
  return out;
}

function moduleSeed(seed: number, name: string): number {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b);
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h ^ (h >>> 16);
}

/**
 * Writes a PEFT adapter directory whose module `m` has task vector
 * `scaling · B_stored · A` = the generated `b · a`.
 *
 * @example
 * await writeSyntheticAdapter("data/demo/client-1", { modules, rank: 16, seed: 1, dtype: "BF16" });
 */
export async function writeSyntheticAdapter(dir: string, spec: SyntheticAdapterSpec): Promise<void> {
  const alpha = spec.alpha ?? 2 * spec.rank;
  const template = adapterConfigFromObject(
    {
      peft_type: "LORA",
      task_type: "CAUSAL_LM",
      base_model_name_or_path: spec.baseModel ?? "synthetic/tiny-llama",
      r: spec.rank,
      lora_alpha: alpha,
      lora_dropout: 0.05,
      use_rslora: spec.useRslora ?? false,
      bias: "none",
      target_modules: [...new Set(spec.modules.map((m) => m.name.split(".").pop() ?? m.name))],
    },
    `${dir}/adapter_config.json`,
  );
  const modules = new Map<string, OutputModule>();
  for (const m of spec.modules) {
    const s = moduleSeed(spec.seed, m.name);
    modules.set(m.name, {
      a: fillUniform(new Float32Array(spec.rank * m.dIn), s ^ 0x2545f491, 1 / Math.sqrt(m.dIn)),
      b: fillUniform(new Float32Array(m.dOut * spec.rank), s ^ 0x6c8e9cf5, spec.bScale ?? 0.01),
      rank: spec.rank,
      layout: linearLayout(m.dIn, m.dOut),
    });
  }
  await writeAdapter(dir, { template, modules, dense: new Map(), dtype: spec.dtype ?? "F32" });
}

/** Attention q/v projections of a small Llama-shaped model (`layers` × {q_proj d→d, v_proj d→d/4}). */
export function llamaQV(layers: number, hidden: number): SyntheticModuleShape[] {
  const out: SyntheticModuleShape[] = [];
  for (let l = 0; l < layers; l++) {
    out.push({ name: `model.layers.${l}.self_attn.q_proj`, dIn: hidden, dOut: hidden });
    out.push({ name: `model.layers.${l}.self_attn.v_proj`, dIn: hidden, dOut: hidden / 4 });
  }
  return out;
}
