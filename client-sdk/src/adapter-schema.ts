/**
 * What a client's adapter looks like (base model, LoRA modules and their
 * shapes, dtype), read from its config and safetensors header, so that `join`
 * can have the coordinator check it against the federation's schema before
 * any training happens.
 */
import {
  AdapterFormatError,
  PEFT_PREFIX,
  parseLoraKey,
  parseSafetensorsLayout,
  type SafetensorsLayout,
  safetensorsHeaderLength,
} from "@tributary/protocol";
import { type AdapterFiles, PEFT_FILES } from "./adapter-files.ts";
import { InvalidUpdateError } from "./errors.ts";

/** A tensor dtype as safetensors names it. */
export type AdapterDtype = "F32" | "F16" | "BF16";

/** One LoRA module of an adapter. */
export interface ModuleShape {
  /** PEFT module path without `base_model.model.`, e.g. `model.layers.0.self_attn.q_proj`. */
  readonly name: string;
  readonly dIn: number;
  readonly dOut: number;
  /** The LoRA rank the client sends for it. */
  readonly maxRank: number;
}

/** The adapter a client will send, as `join` declares it (every field optional). */
export interface JoinSchema {
  /** `base_model_name_or_path` of the adapter config. */
  readonly baseModelId?: string;
  readonly modules?: readonly ModuleShape[];
  readonly dtype?: AdapterDtype;
}

function bad(detail: string, cause?: unknown): InvalidUpdateError {
  return new InvalidUpdateError(
    "INVALID_ARGUMENT",
    `adapter: ${detail}`,
    cause === undefined ? undefined : { cause },
  );
}

/**
 * The {@link JoinSchema} of an adapter: its config's base model, and each
 * module's shape from the `lora_A` (`[r, in]`) / `lora_B` (`[out, r]`) tensors.
 *
 * @throws {InvalidUpdateError} when the files are not a PEFT LoRA adapter.
 * @example
 * await client.join("support-bot", adapterSchema(await readAdapter("./adapter")));
 */
export function adapterSchema(adapter: AdapterFiles): JoinSchema {
  const bytes = adapter.safetensors;
  let layout: SafetensorsLayout;
  try {
    const n = safetensorsHeaderLength(bytes, bytes.byteLength, PEFT_FILES.safetensors);
    layout = parseSafetensorsLayout(bytes.subarray(8, 8 + n), bytes.byteLength, PEFT_FILES.safetensors);
  } catch (err) {
    if (err instanceof AdapterFormatError) throw bad(err.message, err);
    throw err;
  }
  let config: { base_model_name_or_path?: unknown };
  try {
    config = JSON.parse(adapter.configJson);
  } catch (err) {
    throw bad(`${PEFT_FILES.config} is not JSON: ${(err as Error).message}`, err);
  }
  const modules = new Map<string, { dIn?: number; dOut?: number; rank?: number }>();
  let dtype: string | undefined;
  for (const [name, info] of layout.tensors) {
    const key = parseLoraKey(name);
    if (key === undefined || key.prefix !== PEFT_PREFIX || key.embedding || info.shape.length !== 2) continue;
    dtype ??= info.dtype;
    const entry = modules.get(key.module) ?? {};
    if (key.factor === "A") Object.assign(entry, { rank: info.shape[0], dIn: info.shape[1] });
    else Object.assign(entry, { dOut: info.shape[0] });
    modules.set(key.module, entry);
  }
  if (modules.size === 0) throw bad("no base_model.model.<module>.lora_A/lora_B tensors");
  const shapes: ModuleShape[] = [];
  for (const [name, e] of modules) {
    if (e.dIn === undefined || e.dOut === undefined || e.rank === undefined) {
      throw bad(`module ${name} lacks its lora_A or lora_B tensor`);
    }
    shapes.push({ name, dIn: e.dIn, dOut: e.dOut, maxRank: e.rank });
  }
  return {
    ...(typeof config.base_model_name_or_path === "string"
      ? { baseModelId: config.base_model_name_or_path }
      : {}),
    modules: shapes.sort((a, b) => a.name.localeCompare(b.name)),
    ...(dtype === "F32" || dtype === "F16" || dtype === "BF16" ? { dtype } : {}),
  };
}
