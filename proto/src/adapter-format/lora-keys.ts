/**
 * Tensor names of PEFT LoRA weights. Linear and conv layers store
 * `<prefix><m>.lora_A[.<adapter>].weight` / `lora_B`, embeddings store
 * `<prefix><m>.lora_embedding_A[.<adapter>]` / `lora_embedding_B`, where the
 * prefix is usually `base_model.model.` and `<m>` is the module's name in the
 * base model. Every other tensor is not a LoRA factor.
 */

/** The prefix PEFT puts before base-model module names. */
export const PEFT_PREFIX = "base_model.model.";

/** What a LoRA tensor name says about the tensor. */
export interface LoraKey {
  /** Module name without prefix, e.g. `model.layers.0.self_attn.q_proj`. */
  readonly module: string;
  /** `base_model.model.` or `""`. */
  readonly prefix: string;
  /** Adapter name between `lora_A` and `weight` (e.g. `default`), `""` when absent. */
  readonly adapterName: string;
  /** Whether the name uses the embedding form `lora_embedding_A`. */
  readonly embedding: boolean;
  /** Which factor. */
  readonly factor: "A" | "B";
}

const LINEAR = /^(.+)\.lora_([AB])(?:\.([^.]+))?\.weight$/;
const EMBEDDING = /^(.+)\.lora_embedding_([AB])(?:\.([^.]+))?$/;

/**
 * Splits a LoRA tensor name; `undefined` for any other tensor.
 *
 * @example
 * parseLoraKey("base_model.model.model.layers.0.mlp.up_proj.lora_B.default.weight");
 * // { module: "model.layers.0.mlp.up_proj", prefix: "base_model.model.", adapterName: "default", embedding: false, factor: "B" }
 */
export function parseLoraKey(name: string): LoraKey | undefined {
  const linear = LINEAR.exec(name);
  const m = linear ?? EMBEDDING.exec(name);
  if (m === null) return undefined;
  const full = m[1];
  const prefix = full.startsWith(PEFT_PREFIX) && full.length > PEFT_PREFIX.length ? PEFT_PREFIX : "";
  return {
    module: full.slice(prefix.length),
    prefix,
    adapterName: m[3] ?? "",
    embedding: linear === null,
    factor: m[2] as "A" | "B",
  };
}

/** The tensor name of factor `factor` of a module, the inverse of `parseLoraKey`. */
export function loraKey(key: Omit<LoraKey, "factor">, factor: "A" | "B"): string {
  const adapter = key.adapterName === "" ? "" : `.${key.adapterName}`;
  return key.embedding
    ? `${key.prefix}${key.module}.lora_embedding_${factor}${adapter}`
    : `${key.prefix}${key.module}.lora_${factor}${adapter}.weight`;
}
