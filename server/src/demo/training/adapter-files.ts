/**
 * The demo's LoRA adapters as real PEFT adapters (`adapter_config.json` +
 * `adapter_model.safetensors` bytes), written with `encodeAdapter` and read
 * back with `decodeAdapter`, so what nodes exchange is what
 * `PeftModel.from_pretrained` would load.
 */
import {
  type AdapterConfig,
  adapterConfigFromObject,
  CONFIG_FILE,
  decodeAdapter,
  encodeAdapter,
  type OutputModule,
} from "../../peft/index.ts";
import { linearLayout } from "../../peft/synthetic-adapter.ts";
import { BASE_MODEL_ID } from "./base-model.ts";
import type { LoraFactors, LoraWeights } from "./lora-model.ts";

/** A PEFT adapter as bytes: what a node submits and what a merge returns. */
export interface AdapterFiles {
  /** `adapter_config.json` text. */
  readonly configJson: string;
  /** `adapter_model.safetensors` bytes. */
  readonly safetensors: Uint8Array;
}

/**
 * The `adapter_config.json` of a fresh demo adapter: LoRA of rank `rank` and
 * `lora_alpha` `alpha` on every `fc` and the `head` of `tributary-demo/mlp`.
 */
export function demoAdapterConfig(rank: number, alpha: number): AdapterConfig {
  return adapterConfigFromObject(
    {
      peft_type: "LORA",
      base_model_name_or_path: BASE_MODEL_ID,
      r: rank,
      lora_alpha: alpha,
      lora_dropout: 0,
      use_rslora: false,
      bias: "none",
      target_modules: ["fc", "head"],
    },
    CONFIG_FILE,
  );
}

/**
 * Encodes `weights` as a PEFT adapter. `template` supplies the config fields
 * (default: `demoAdapterConfig` at the first module's rank with
 * `lora_alpha = scaling · rank`); `encodeAdapter` rewrites `r`/`rank_pattern`
 * and stores `B` so that PEFT's `scaling · B · A` is each module's `ΔW`.
 *
 * @example
 * const files = encodeLora(weights);
 * await writeFile("adapter_model.safetensors", files.safetensors);
 */
export function encodeLora(weights: LoraWeights, template?: AdapterConfig): AdapterFiles {
  const first = weights.values().next().value;
  if (first === undefined) throw new RangeError("encodeLora: the adapter has no modules");
  const config = template ?? demoAdapterConfig(first.rank, first.scaling * first.rank);
  const modules = new Map<string, OutputModule>();
  for (const [name, f] of weights) {
    // OutputModule's task vector is b · a with no scaling: fold it into b.
    const b = new Float32Array(f.b.length);
    for (let i = 0; i < b.length; i++) b[i] = f.b[i] * f.scaling;
    modules.set(name, { a: f.a, b, rank: f.rank, layout: linearLayout(f.dIn, f.dOut) });
  }
  const { configText, safetensors } = encodeAdapter({
    template: config,
    modules,
    dense: new Map(),
    dtype: "F32",
  });
  return { configJson: configText, safetensors };
}

/**
 * Decodes (and validates) a PEFT adapter into factors, keeping each module's
 * rank and the scaling its config gives it (`B` as stored), plus the config
 * to reuse as the template when the trained adapter is written back.
 *
 * @example
 * const { weights } = decodeLora(merged, "round-3");
 */
export function decodeLora(
  files: AdapterFiles,
  label: string,
): { weights: LoraWeights; config: AdapterConfig } {
  const adapter = decodeAdapter(files.configJson, files.safetensors, label);
  if (adapter.baseModel !== undefined && adapter.baseModel !== BASE_MODEL_ID) {
    throw new RangeError(`${label}: adapter is for base model ${adapter.baseModel}, not ${BASE_MODEL_ID}`);
  }
  const weights = new Map<string, LoraFactors>();
  for (const [name, m] of adapter.modules) {
    weights.set(name, { dIn: m.dIn, dOut: m.dOut, rank: m.rank, scaling: m.scaling, a: m.a, b: m.b });
  }
  return { weights, config: adapter.config };
}
