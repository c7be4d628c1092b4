/**
 * A PEFT adapter read one module at a time: built from the config and the
 * safetensors header only, it loads (and validates) a module's two tensors
 * when asked, so merging many large updates never holds whole adapters.
 */

import type { TensorDType } from "@tributary/protocol";
import { AdapterFormatError, formatShape, numel, SAFETENSORS_DTYPE_BYTES } from "@tributary/protocol";
import { CONFIG_FILE, finiteF32, WEIGHTS_FILE } from "./adapter-codec.ts";
import { type AdapterConfig, parseAdapterConfig } from "./adapter-config.ts";
import { type AdapterPlan, type ModulePlan, planAdapter, type TensorInfo } from "./adapter-plan.ts";
import type { DenseTensor, LoraModule } from "./adapter-types.ts";
import { decodeTensorF32 } from "./safetensors.ts";
import type { TensorLocation } from "./tensor-location.ts";

/** Reads one tensor's raw bytes (e.g. a positioned read of a stored file) into a fresh buffer it hands over. */
export type TensorReader = (name: string) => Promise<Uint8Array>;

/** An adapter whose tensors are loaded on demand; structurally an adapter *shape* for compatibility checks. */
export interface LazyAdapter {
  readonly label: string;
  readonly baseModel?: string;
  readonly config: AdapterConfig;
  /** Module structure (no tensor data). */
  readonly modules: ReadonlyMap<string, ModulePlan>;
  /** Dense tensors' structure (no data). */
  readonly dense: ReadonlyMap<string, TensorInfo>;
  readonly dtype: TensorDType;
  /** Loads one module's factors, rejecting NaN/Inf naming the tensor. */
  loadModule(name: string): Promise<LoraModule>;
  /** Loads one dense tensor, rejecting NaN/Inf naming the tensor. */
  loadDense(name: string): Promise<DenseTensor>;
  /** Where a tensor lies in a file, when the adapter is read from one (for reads from another thread). */
  locate?(name: string): TensorLocation | undefined;
}

/** Where a tensor's bytes are in the adapter's file (what `lazyAdapter` adds the rest of `TensorLocation` to). */
export type TensorPlace = (
  name: string,
) => Pick<TensorLocation, "path" | "offset" | "byteLength"> | undefined;

/** The {@link TensorPlace} of tensors laid out in the file at `path` (e.g. a safetensors header's entries). */
export function placesIn(
  path: string,
  tensors: ReadonlyMap<string, { readonly offset: number; readonly byteLength: number }>,
): TensorPlace {
  return (name) => {
    const t = tensors.get(name);
    return t === undefined ? undefined : { path, offset: t.offset, byteLength: t.byteLength };
  };
}

/**
 * Wraps a stored update: `configText` is its `adapter_config.json`, `tensors`
 * its safetensors header, `read` fetches a tensor's bytes. Structural errors
 * (pairing, shapes, ranks) are thrown here; value errors (NaN/Inf) when a
 * tensor is loaded, unless `checkValues` is false (intake, whose own check
 * of the values is stricter, passes false).
 *
 * @example
 * const lazy = lazyAdapter(update.configJson, reader.tensors, (n) => reader.read(n), `client ${id}`);
 * const q = await lazy.loadModule("model.layers.0.self_attn.q_proj");
 */
export function lazyAdapter(
  configText: string,
  tensors: ReadonlyMap<string, TensorInfo>,
  read: TensorReader,
  label: string,
  place?: TensorPlace,
  checkValues = true,
): LazyAdapter {
  const file = `${label}/${WEIGHTS_FILE}`;
  const config = parseAdapterConfig(configText, `${label}/${CONFIG_FILE}`);
  const plan: AdapterPlan = planAdapter(config, tensors, file);
  const load = async (name: string): Promise<Float32Array> => {
    const info = tensors.get(name)!;
    const bytes = await read(name);
    const expected = numel(info.shape) * (SAFETENSORS_DTYPE_BYTES[info.dtype] ?? 0);
    if (bytes.length !== expected) {
      throw new AdapterFormatError(
        `${file}: tensor "${name}" has ${bytes.length} bytes, expected ${expected} for ${info.dtype} ${formatShape(info.shape)}`,
        file,
        name,
      );
    }
    // The reader's bytes are fresh and ours: F32 is decoded in place (one copy of the data, not two).
    const tensor = { dtype: info.dtype, shape: [...info.shape], bytes };
    return checkValues ? finiteF32(tensor, file, name, true) : decodeTensorF32(tensor, file, name, true);
  };
  return {
    label,
    ...(config.baseModel !== undefined ? { baseModel: config.baseModel } : {}),
    config,
    modules: plan.modules,
    dense: plan.dense,
    dtype: plan.dtype,
    async loadModule(name) {
      const p = plan.modules.get(name);
      if (p === undefined) throw new RangeError(`${label}: no LoRA module ${name}`);
      const [a, b] = await Promise.all([load(p.aName), load(p.bName)]);
      return { a, b, rank: p.rank, dIn: p.dIn, dOut: p.dOut, scaling: p.scaling, layout: p.layout };
    },
    async loadDense(name) {
      const info = plan.dense.get(name);
      if (info === undefined) throw new RangeError(`${label}: no tensor ${name}`);
      return { shape: [...info.shape], data: await load(name) };
    },
    ...(place !== undefined
      ? {
          locate(name: string): TensorLocation | undefined {
            const info = tensors.get(name);
            const at = place(name);
            if (info === undefined || at === undefined) return undefined;
            return { ...at, file, name, dtype: info.dtype, shape: info.shape };
          },
        }
      : {}),
  };
}
