/**
 * Decoded PEFT LoRA adapters. Every factor is a row-major `Float32Array`:
 * `A` is `rank × dIn`, `B` is `dOut × rank`, and a module's task vector is
 * `scaling · B · A`. The layout records how the factors were stored so the
 * writer can restore the same tensor names and shapes.
 */

import type { TensorDType } from "@tributary/protocol";
import type { AdapterConfig } from "./adapter-config.ts";

/** How one module's LoRA factors are stored in the safetensors file. */
export interface LoraLayout {
  /**
   * `linear`: A `[r, in]`, B `[out, r]`. `embedding`: `lora_embedding_A`
   * `[r, num_embeddings]`, `lora_embedding_B` `[embedding_dim, r]`. `conv`:
   * A `[r, in, ...kernel]`, B `[out, r, 1, ...]`.
   */
  readonly kind: "linear" | "embedding" | "conv";
  /** Stored shape of A without its leading rank dimension, e.g. `[in, kh, kw]`. */
  readonly aShape: readonly number[];
  /** Stored shape of B without its rank dimension (dimension 1), e.g. `[out, 1, 1]`. */
  readonly bShape: readonly number[];
  /** Tensor name prefix before the module name, usually `base_model.model.`. */
  readonly prefix: string;
  /** Adapter name in the tensor names (`lora_A.<name>.weight`), `""` when absent. */
  readonly adapterName: string;
}

/** One decoded LoRA module; structurally a pipeline `InputModule`. */
export interface LoraModule {
  /** A, row-major `rank × dIn` (conv kernels flattened into `dIn`). */
  readonly a: Float32Array;
  /** B, row-major `dOut × rank`. */
  readonly b: Float32Array;
  readonly rank: number;
  readonly dIn: number;
  readonly dOut: number;
  /** PEFT scaling of this module (`alpha / rank`, or `alpha / √rank` with rsLoRA). */
  readonly scaling: number;
  readonly layout: LoraLayout;
}

/** A non-LoRA tensor (a `modules_to_save` copy, a bias, …), decoded to F32. */
export interface DenseTensor {
  readonly shape: number[];
  readonly data: Float32Array;
}

/** A decoded PEFT adapter; structurally a pipeline `AdapterInput`. */
export interface PeftAdapter {
  /** Directory path or client id, used in every error message. */
  readonly label: string;
  /** `base_model_name_or_path` of the config, when given. */
  readonly baseModel?: string;
  readonly config: AdapterConfig;
  /** LoRA modules by module name (no `base_model.model.` prefix), in natural order. */
  readonly modules: Map<string, LoraModule>;
  /** Every other tensor by its full name. */
  readonly dense: Map<string, DenseTensor>;
  /** dtype the LoRA factors were stored in (F32 when they disagree). */
  readonly dtype: TensorDType;
  /** The safetensors `__metadata__`. */
  readonly metadata: Record<string, string>;
}

/** A merged module to write: its task vector is exactly `b · a`, with no scaling. */
export interface OutputModule {
  /** A, row-major `rank × dIn`. */
  readonly a: Float32Array;
  /** B, row-major `dOut × rank` (all scaling folded in). */
  readonly b: Float32Array;
  readonly rank: number;
  /** Layout to write the module in (usually the first input's). */
  readonly layout: LoraLayout;
}

/** Everything `encodeAdapter` needs to write a merged adapter. */
export interface AdapterOutput {
  /** Config whose fields are kept (the first input's); `r` and `rank_pattern` are rewritten. */
  readonly template: AdapterConfig;
  readonly modules: ReadonlyMap<string, OutputModule>;
  readonly dense: ReadonlyMap<string, { readonly shape: readonly number[]; readonly data: Float32Array }>;
  /** dtype to store every tensor in. */
  readonly dtype: TensorDType;
  /** Extra safetensors metadata; `format: "pt"` is always added. */
  readonly metadata?: Readonly<Record<string, string>>;
  /**
   * Write every module at this LoRA scaling: `lora_alpha` becomes
   * `scaling · r` and `alpha_pattern` gives `scaling · rank` to each module
   * `rank_pattern` gives another rank (the template's `lora_alpha` is kept
   * otherwise). Clients continuing from the adapter then train at this
   * scaling whatever its ranks (the coordinator's canonical output, its rank
   * variants included).
   */
  readonly scaling?: number;
}
