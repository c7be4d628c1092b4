/**
 * The structure of a PEFT adapter from its config and safetensors header
 * alone (names, dtypes, shapes): which tensors pair into which LoRA module,
 * with what rank, layout and scaling, and which tensors are dense. Both the
 * in-memory decoder and the lazy, module-at-a-time reader build on it.
 */

import {
  AdapterFormatError,
  formatShape,
  isTensorDType,
  type LoraKey,
  loraKey,
  parseLoraKey,
  type TensorDType,
} from "@tributary/protocol";
import { type AdapterConfig, rankFor, scalingFor } from "./adapter-config.ts";
import type { LoraLayout } from "./adapter-types.ts";

/** Name, dtype and shape of one stored tensor. */
export interface TensorInfo {
  readonly dtype: string;
  readonly shape: readonly number[];
}

/** One LoRA module as stored: its two tensors and what they mean. */
export interface ModulePlan {
  readonly aName: string;
  readonly bName: string;
  readonly rank: number;
  readonly dIn: number;
  readonly dOut: number;
  readonly scaling: number;
  readonly layout: LoraLayout;
}

/** The structure of an adapter. */
export interface AdapterPlan {
  /** LoRA modules by module name, in natural order. */
  readonly modules: Map<string, ModulePlan>;
  /** Every other tensor, in natural order. */
  readonly dense: Map<string, TensorInfo>;
  /** dtype of the LoRA factors (F32 when they disagree). */
  readonly dtype: TensorDType;
}

/** Natural order of names (`layers.2` before `layers.10`). */
export function naturalOrder(a: string, b: string): number {
  return a.localeCompare(b, "en", { numeric: true });
}

function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

interface Pair {
  key: Omit<LoraKey, "factor">;
  a?: string;
  b?: string;
}

/**
 * Pairs and checks the LoRA tensors of an adapter. Throws `AdapterFormatError`
 * naming `file` and the tensor: unpaired factors, bad shapes, rank mismatches
 * between A and B or against the config, no LoRA tensors at all.
 */
export function planAdapter(
  config: AdapterConfig,
  tensors: ReadonlyMap<string, TensorInfo>,
  file: string,
): AdapterPlan {
  const fail = (msg: string, tensor?: string): never => {
    throw new AdapterFormatError(`${file}: ${msg}`, file, tensor);
  };
  const { pairs, denseNames } = pairFactors(tensors.keys(), fail);
  if (pairs.size === 0) {
    fail(`no LoRA tensors (expected names like "base_model.model.<module>.lora_A.weight")`);
  }
  const modules = new Map<string, ModulePlan>();
  const dtypes = new Set<string>();
  for (const m of [...pairs.keys()].sort(naturalOrder)) {
    const pair = pairs.get(m)!;
    if (pair.a === undefined || pair.b === undefined) {
      const present = (pair.a ?? pair.b)!;
      const missing = loraKey(pair.key, pair.a === undefined ? "A" : "B");
      fail(`tensor "${present}" has no matching "${missing}"`, present);
    }
    const aName = pair.a!;
    const bName = pair.b!;
    const a = tensors.get(aName)!;
    const b = tensors.get(bName)!;
    const layout = layoutOf(pair.key, aName, a, bName, b, fail);
    const rank = a.shape[0];
    const expected = rankFor(config, m);
    if (rank !== expected) {
      fail(
        `tensor "${aName}" has rank ${rank}, but adapter_config.json gives module ${m} rank ${expected} (r / rank_pattern)`,
        aName,
      );
    }
    dtypes.add(a.dtype).add(b.dtype);
    modules.set(m, {
      aName,
      bName,
      rank,
      dIn: numel(layout.aShape),
      dOut: layout.bShape[0],
      scaling: scalingFor(config, m, rank),
      layout,
    });
  }
  const dense = new Map<string, TensorInfo>();
  for (const name of denseNames.sort(naturalOrder)) dense.set(name, tensors.get(name)!);
  const [only] = dtypes;
  const dtype: TensorDType = dtypes.size === 1 && isTensorDType(only) ? only : "F32";
  return { modules, dense, dtype };
}

/** Groups LoRA tensor names by module; every other name is dense. */
function pairFactors(
  names: Iterable<string>,
  fail: (msg: string, tensor?: string) => never,
): { pairs: Map<string, Pair>; denseNames: string[] } {
  const pairs = new Map<string, Pair>();
  const denseNames: string[] = [];
  for (const name of names) {
    const key = parseLoraKey(name);
    if (key === undefined) {
      denseNames.push(name);
      continue;
    }
    const { factor, ...where } = key;
    const pair = pairs.get(key.module) ?? { key: where };
    const other = pair.a ?? pair.b;
    if (other !== undefined && loraKey(pair.key, factor) !== name) {
      fail(`tensor "${name}" and tensor "${other}" are LoRA factors of the same module ${key.module}`, name);
    }
    if (factor === "A") pair.a = name;
    else pair.b = name;
    pairs.set(key.module, pair);
  }
  return { pairs, denseNames };
}

/** Checks the shapes of a module's factors and how they are laid out. */
function layoutOf(
  key: Omit<LoraKey, "factor">,
  aName: string,
  a: TensorInfo,
  bName: string,
  b: TensorInfo,
  fail: (msg: string, tensor?: string) => never,
): LoraLayout {
  const conv = !key.embedding && a.shape.length > 2;
  const kind = key.embedding ? "embedding" : conv ? "conv" : "linear";
  const expectA =
    kind === "conv" ? "[r, in, ...kernel]" : kind === "embedding" ? "[r, num_embeddings]" : "[r, in]";
  if (conv ? a.shape.length < 3 : a.shape.length !== 2) {
    fail(`tensor "${aName}" has shape ${formatShape(a.shape)}, expected ${expectA}`, aName);
  }
  const bOk =
    b.shape.length === a.shape.length &&
    (conv ? b.shape.slice(2).every((d) => d === 1) : b.shape.length === 2);
  if (!bOk) {
    const expectB = conv ? `[out, r${", 1".repeat(a.shape.length - 2)}]` : "[out, r]";
    fail(
      `tensor "${bName}" has shape ${formatShape(b.shape)}, expected ${expectB} to match "${aName}"`,
      bName,
    );
  }
  if (a.shape[0] !== b.shape[1]) {
    fail(
      `rank mismatch: tensor "${aName}" has rank ${a.shape[0]}, tensor "${bName}" has rank ${b.shape[1]}`,
      bName,
    );
  }
  return {
    kind,
    aShape: a.shape.slice(1),
    bShape: [b.shape[0], ...b.shape.slice(2)],
    prefix: key.prefix,
    adapterName: key.adapterName,
  };
}
