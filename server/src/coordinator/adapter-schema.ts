/**
 * Checks of an update's adapter against its federation's `AdapterSchema`,
 * shared by the buffered and the streaming validators: the config's base
 * model, then — from the safetensors header alone (names, dtypes, shapes) —
 * the module set, each module's dimensions, rank and dtype.
 */

import { AdapterFormatError, formatShape, parseLoraKey } from "@tributary/protocol";
import type { AdapterSchema } from "../core/model.ts";
import { type AdapterConfig, parseAdapterConfig, rankFor } from "../peft/adapter-config.ts";
import { InvalidUpdateError } from "./errors.ts";

/** What the safetensors header says about one tensor. */
export interface TensorInfo {
  readonly dtype: string;
  readonly shape: readonly number[];
}

/** The label every adapter error of a client's update is prefixed with. */
export function updateLabel(clientId: string): string {
  return `client ${clientId}`;
}

/**
 * Parses an update's `adapter_config.json` and checks its
 * `base_model_name_or_path` (when present) equals the schema's base model.
 * Throws `InvalidUpdateError` naming the client and the field.
 *
 * @example
 * const config = parseUpdateConfig(federation.schema, "hospital-3", header.configJson);
 */
export function parseUpdateConfig(
  schema: AdapterSchema,
  clientId: string,
  configJson: string,
): AdapterConfig {
  let config: AdapterConfig;
  try {
    config = parseAdapterConfig(configJson, `${updateLabel(clientId)}/adapter_config.json`);
  } catch (err) {
    if (err instanceof AdapterFormatError) {
      throw new InvalidUpdateError(clientId, err.message, { field: "adapter_config_json", cause: err });
    }
    throw err;
  }
  if (config.baseModel !== undefined && config.baseModel !== schema.baseModel) {
    throw new InvalidUpdateError(
      clientId,
      `adapter_config.json has base_model_name_or_path "${config.baseModel}", but the federation fine-tunes "${schema.baseModel}"`,
      { field: "base_model_name_or_path" },
    );
  }
  return config;
}

function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

interface Factors {
  a?: string;
  b?: string;
}

/** Groups tensor names by LoRA module; any other tensor is refused. */
function groupFactors(clientId: string, names: Iterable<string>): Map<string, Factors> {
  const modules = new Map<string, Factors>();
  for (const name of names) {
    const key = parseLoraKey(name);
    if (key === undefined) {
      throw new InvalidUpdateError(
        clientId,
        `tensor "${name}" is not a LoRA factor (lora_A / lora_B); the federation accepts only the LoRA modules of its schema`,
        { tensor: name },
      );
    }
    const f = modules.get(key.module) ?? {};
    const slot = key.factor === "A" ? "a" : "b";
    const other = f[slot];
    if (other !== undefined) {
      throw new InvalidUpdateError(
        clientId,
        `tensors "${other}" and "${name}" are both lora_${key.factor} of module ${key.module}`,
        { tensor: name, module: key.module },
      );
    }
    f[slot] = name;
    modules.set(key.module, f);
  }
  return modules;
}

/**
 * Checks the tensors of an update against the schema: exactly the schema's
 * modules, each with an A `[r, ...in]` and B `[out, r, 1, ...]` pair whose
 * `dIn`/`dOut` match, `r` ≤ `maxRank` and equal to the config's rank for the
 * module, stored in one of the schema's dtypes. Throws `InvalidUpdateError`
 * naming the client and the module or tensor.
 *
 * @example
 * checkTensorsAgainstSchema(schema, "hospital-3", config, parseSafetensors(bytes, label).tensors);
 */
export function checkTensorsAgainstSchema(
  schema: AdapterSchema,
  clientId: string,
  config: AdapterConfig,
  tensors: ReadonlyMap<string, TensorInfo>,
): void {
  const fail = (detail: string, where: { tensor?: string; module?: string }): never => {
    throw new InvalidUpdateError(clientId, detail, where);
  };
  const modules = groupFactors(clientId, tensors.keys());
  const expected = new Map(schema.modules.map((m) => [m.name, m]));
  for (const name of modules.keys()) {
    if (!expected.has(name)) {
      fail(`module ${name} is not in the federation's schema (extra module)`, { module: name });
    }
  }
  const missing = schema.modules.filter((m) => !modules.has(m.name)).map((m) => m.name);
  if (missing.length > 0) {
    fail(`module${missing.length > 1 ? "s" : ""} ${missing.join(", ")} missing from the adapter`, {
      module: missing[0],
    });
  }
  for (const spec of schema.modules) {
    const { a: aName, b: bName } = modules.get(spec.name)!;
    if (aName === undefined || bName === undefined) {
      const present = (aName ?? bName)!;
      fail(`module ${spec.name} has tensor "${present}" but no lora_${aName === undefined ? "A" : "B"}`, {
        tensor: present,
        module: spec.name,
      });
    }
    const a = tensors.get(aName!)!;
    const b = tensors.get(bName!)!;
    for (const [name, t] of [
      [aName!, a],
      [bName!, b],
    ] as const) {
      if (!(schema.dtypes as readonly string[]).includes(t.dtype)) {
        fail(`tensor "${name}" is ${t.dtype}; the federation accepts ${schema.dtypes.join(", ")}`, {
          tensor: name,
          module: spec.name,
        });
      }
    }
    const shapesOk =
      a.shape.length >= 2 &&
      b.shape.length === a.shape.length &&
      b.shape.slice(2).every((d) => d === 1) &&
      a.shape[0] === b.shape[1];
    if (!shapesOk) {
      fail(
        `module ${spec.name} has lora_A ${formatShape(a.shape)} and lora_B ${formatShape(b.shape)}, expected [r, ${spec.dIn}] and [${spec.dOut}, r]`,
        { tensor: bName, module: spec.name },
      );
    }
    const rank = a.shape[0];
    const dIn = numel(a.shape.slice(1));
    const dOut = b.shape[0];
    if (dIn !== spec.dIn || dOut !== spec.dOut) {
      fail(
        `module ${spec.name} maps ${dIn} → ${dOut} (lora_A ${formatShape(a.shape)}, lora_B ${formatShape(b.shape)}), the schema says ${spec.dIn} → ${spec.dOut}`,
        { tensor: dIn !== spec.dIn ? aName : bName, module: spec.name },
      );
    }
    if (rank < 1 || rank > spec.maxRank) {
      fail(`module ${spec.name} has rank ${rank}, expected 1 to max_rank ${spec.maxRank}`, {
        tensor: aName,
        module: spec.name,
      });
    }
    const configured = rankFor(config, spec.name);
    if (rank !== configured) {
      fail(
        `tensor "${aName}" has rank ${rank}, but adapter_config.json gives module ${spec.name} rank ${configured} (r / rank_pattern)`,
        { tensor: aName, module: spec.name },
      );
    }
  }
}
