/**
 * What a client's adapter looks like (base model, LoRA modules and their
 * shapes, dtype), read from its config and safetensors header, so that `join`
 * can have the coordinator check it against the federation's schema before
 * any training happens.
 */
import type { AdapterFiles } from "./adapter-files.ts";
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

const LORA = /^base_model\.model\.(.+)\.lora_([AB])(?:\.[^.]+)?\.weight$/;

function bad(detail: string): InvalidUpdateError {
  return new InvalidUpdateError("INVALID_ARGUMENT", `adapter: ${detail}`);
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
  if (bytes.byteLength < 8) throw bad("safetensors file is shorter than its 8-byte header length");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(view.getBigUint64(0, true));
  if (8 + n > bytes.byteLength) throw bad(`safetensors header length ${n} exceeds the file`);
  let header: Record<string, { dtype?: string; shape?: number[] }>;
  let config: { base_model_name_or_path?: unknown };
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
    config = JSON.parse(adapter.configJson);
  } catch (err) {
    throw bad(`unreadable JSON: ${(err as Error).message}`);
  }
  const modules = new Map<string, { dIn?: number; dOut?: number; rank?: number }>();
  let dtype: string | undefined;
  for (const [key, info] of Object.entries(header)) {
    const m = LORA.exec(key);
    if (m === null || !Array.isArray(info.shape) || info.shape.length !== 2) continue;
    dtype ??= info.dtype;
    const entry = modules.get(m[1]) ?? {};
    if (m[2] === "A") Object.assign(entry, { rank: info.shape[0], dIn: info.shape[1] });
    else Object.assign(entry, { dOut: info.shape[0] });
    modules.set(m[1], entry);
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
