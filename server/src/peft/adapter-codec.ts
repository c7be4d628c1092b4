/**
 * PEFT LoRA adapters to and from bytes: `decodeAdapter` validates an
 * `adapter_config.json` + `adapter_model.safetensors` pair at the boundary
 * (pairing, shapes, ranks against the config, dtypes, NaN/Inf) and returns
 * F32 factors; `encodeAdapter` writes merged factors back so that PEFT's
 * `scaling · B_stored · A` is exactly the merged task vector `b · a`.
 */

import { AdapterFormatError, firstUnrepresentable, loraKey } from "@tributary/protocol";
import {
  type AdapterConfig,
  adapterConfigFromObject,
  parseAdapterConfig,
  patternMatches,
  rankFor,
  scalingFor,
} from "./adapter-config.ts";
import { naturalOrder, planAdapter } from "./adapter-plan.ts";
import type { AdapterOutput, DenseTensor, LoraModule, OutputModule, PeftAdapter } from "./adapter-types.ts";
import {
  decodeTensorF32,
  parseSafetensors,
  type SafetensorsEntry,
  type SafetensorsTensor,
  serializeSafetensors,
} from "./safetensors.ts";

/** File names inside a PEFT adapter directory. */
export const CONFIG_FILE = "adapter_config.json";
/** File names inside a PEFT adapter directory. */
export const WEIGHTS_FILE = "adapter_model.safetensors";

function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/**
 * Decodes and validates a PEFT LoRA adapter. `label` (a directory or client
 * id) prefixes the file names in every `AdapterFormatError`.
 *
 * @example
 * const adapter = decodeAdapter(configText, weightBytes, "client-7");
 * const m = adapter.modules.get("model.layers.0.self_attn.q_proj")!; // Θ = m.scaling · m.b · m.a
 */
export function decodeAdapter(configText: string, safetensorsBytes: Uint8Array, label: string): PeftAdapter {
  const file = `${label}/${WEIGHTS_FILE}`;
  const config = parseAdapterConfig(configText, `${label}/${CONFIG_FILE}`);
  const { metadata, tensors } = parseSafetensors(safetensorsBytes, file);
  const plan = planAdapter(config, tensors, file);
  const modules = new Map<string, LoraModule>();
  for (const [m, p] of plan.modules) {
    modules.set(m, {
      a: finiteF32(tensors.get(p.aName)!, file, p.aName),
      b: finiteF32(tensors.get(p.bName)!, file, p.bName),
      rank: p.rank,
      dIn: p.dIn,
      dOut: p.dOut,
      scaling: p.scaling,
      layout: p.layout,
    });
  }
  const dense = new Map<string, DenseTensor>();
  for (const name of plan.dense.keys()) {
    const t = tensors.get(name)!;
    dense.set(name, { shape: t.shape, data: finiteF32(t, file, name) });
  }
  return {
    label,
    ...(config.baseModel !== undefined ? { baseModel: config.baseModel } : {}),
    config,
    modules,
    dense,
    dtype: plan.dtype,
    metadata,
  };
}

/** Decodes a tensor to F32 (in place when `handedOver`, see `decodeFloats`) and rejects NaN/Inf, naming the first bad index. */
export function finiteF32(
  t: SafetensorsTensor,
  file: string,
  name: string,
  handedOver = false,
): Float32Array {
  const data = decodeTensorF32(t, file, name, handedOver);
  const bad = firstUnrepresentable(data);
  if (bad >= 0) {
    throw new AdapterFormatError(
      `${file}: tensor "${name}" has non-finite value ${data[bad]} at index ${bad}`,
      file,
      name,
    );
  }
  return data;
}

/**
 * Encodes a merged adapter. Each module's task vector is `b · a`; the config
 * keeps every template field but sets `r` to the most common rank and
 * `rank_pattern` entries for the others, and B is stored divided by the
 * written config's scaling so that PEFT's `scaling · B_stored · A = b · a`.
 *
 * @example
 * const { configText, safetensors } = encodeAdapter({ template: first.config, modules, dense, dtype: "BF16" });
 */
export function encodeAdapter(out: AdapterOutput): { configText: string; safetensors: Uint8Array } {
  const names = [...out.modules.keys()].sort(naturalOrder);
  if (names.length === 0) {
    throw new AdapterFormatError(`${WEIGHTS_FILE}: no LoRA modules to write`, WEIGHTS_FILE);
  }
  const modules = names.map((m) => ({ name: m, ...padRank(m, out.modules.get(m)!) }));
  const { raw, config } = writtenConfig(out.template, modules, out.scaling);
  const entries: SafetensorsEntry[] = [];
  const add = (name: string, shape: readonly number[], data: Float32Array): void => {
    const bad = firstUnrepresentable(data, out.dtype);
    if (bad >= 0) {
      throw new AdapterFormatError(
        `${WEIGHTS_FILE}: tensor "${name}" value ${data[bad]} at index ${bad} is not representable as ${out.dtype}`,
        WEIGHTS_FILE,
        name,
      );
    }
    entries.push({ name, dtype: out.dtype, shape, data });
  };
  for (const { name, a, b, rank, layout } of modules) {
    if (rankFor(config, name) !== rank) {
      throw new AdapterFormatError(
        `${CONFIG_FILE}: rank_pattern cannot give module ${name} rank ${rank} (another key matches it)`,
        CONFIG_FILE,
      );
    }
    // PEFT computes s · B_stored · A; store B / s so that equals b · a.
    const s = scalingFor(config, name, rank);
    const bStored = new Float32Array(b.length);
    for (let i = 0; i < b.length; i++) bStored[i] = b[i] / s;
    const key = {
      module: name,
      prefix: layout.prefix,
      adapterName: layout.adapterName,
      embedding: layout.kind === "embedding",
    };
    add(loraKey(key, "A"), [rank, ...layout.aShape], a);
    add(loraKey(key, "B"), [layout.bShape[0], rank, ...layout.bShape.slice(1)], bStored);
  }
  for (const [name, t] of out.dense) add(name, t.shape, t.data);
  entries.sort((x, y) => naturalOrder(x.name, y.name));
  const safetensors = serializeSafetensors(entries, { ...out.metadata, format: "pt" }, WEIGHTS_FILE);
  return { configText: `${JSON.stringify(raw, null, 2)}\n`, safetensors };
}

/** The `lora_alpha` that gives `scaling` at `rank` (`α / r`, or `α / √r` with rsLoRA). */
function alphaAt(template: AdapterConfig, scaling: number, rank: number): number {
  return template.useRslora ? scaling * Math.sqrt(rank) : scaling * rank;
}

/** Validates a module's factor sizes; a rank-0 module becomes rank 1 with zero factors (same task vector). */
function padRank(name: string, m: OutputModule): OutputModule {
  const dIn = numel(m.layout.aShape);
  const dOut = numel(m.layout.bShape);
  if (
    !Number.isSafeInteger(m.rank) ||
    m.rank < 0 ||
    m.a.length !== m.rank * dIn ||
    m.b.length !== dOut * m.rank
  ) {
    throw new AdapterFormatError(
      `${WEIGHTS_FILE}: module ${name} has rank ${m.rank} with ${m.a.length} values in a and ${m.b.length} in b, expected ${m.rank}×${dIn} and ${dOut}×${m.rank}`,
      WEIGHTS_FILE,
      name,
    );
  }
  if (m.rank > 0) return m;
  return { a: new Float32Array(dIn), b: new Float32Array(dOut), rank: 1, layout: m.layout };
}

/**
 * The template's raw config with `r` set to the most common rank (ties: the
 * template's `r`, else the smallest) and a `rank_pattern` that gives every
 * module its rank: template keys are kept only where every module they match
 * has their rank, and modules still wrong get an entry under their full name,
 * placed first and longest first so a name wins over any name it ends with.
 */
function writtenConfig(
  template: AdapterConfig,
  modules: readonly { name: string; rank: number }[],
  scaling?: number,
) {
  const counts = new Map<number, number>();
  for (const { rank } of modules) counts.set(rank, (counts.get(rank) ?? 0) + 1);
  const isTemplate = (rank: number): number => (rank === template.r ? 1 : 0);
  const [[r]] = [...counts].sort(
    ([ra, na], [rb, nb]) => nb - na || isTemplate(rb) - isTemplate(ra) || ra - rb,
  );
  const kept = Object.entries(template.rankPattern).filter(([key, value]) => {
    return modules.every((m) => m.rank === value || !patternMatches(key, m.name));
  });
  const explicit = new Map<string, number>();
  for (;;) {
    // Null prototype: module names are plain keys.
    const rankPattern: Record<string, number> = Object.create(null);
    const byLength = [...explicit].sort(([x], [y]) => y.length - x.length);
    for (const [key, value] of [...byLength, ...kept]) rankPattern[key] = value;
    const alphas =
      scaling === undefined
        ? {}
        : {
            lora_alpha: alphaAt(template, scaling, r),
            alpha_pattern: Object.fromEntries(
              Object.entries(rankPattern).map(([key, rank]) => [key, alphaAt(template, scaling, rank)]),
            ),
          };
    const raw = { ...template.raw, r, rank_pattern: rankPattern, ...alphas };
    const probe = adapterConfigFromObject(raw, CONFIG_FILE);
    const wrong = modules.filter((m) => !explicit.has(m.name) && rankFor(probe, m.name) !== m.rank);
    if (wrong.length === 0) return { raw, config: probe };
    for (const m of wrong) explicit.set(m.name, m.rank);
  }
}
