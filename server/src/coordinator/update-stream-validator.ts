/**
 * Accepted means mergeable: a staged update is read through the very reader
 * the round merge uses (`lazyAdapter`: the same config parser, the same
 * pairing of factors into modules), module by module so memory stays bounded
 * by the largest module, and refused unless
 *
 * - its tensors are exactly the schema's modules, in the canonical PEFT form
 *   `base_model.model.<module>.lora_A.weight` / `lora_B.weight` (what
 *   `save_pretrained` writes): no other prefix, adapter name or embedding
 *   form, so the merge can never pair factors differently from intake;
 * - every module's scaling (`lora_alpha / r`, or `/ √r` with rsLoRA) is in
 *   [{@link MIN_SCALING}, {@link MAX_SCALING}];
 * - every factor value is finite and at most {@link MAX_FACTOR_VALUE} in
 *   magnitude, and every module's task-vector norm `‖s·B·A‖_F`, computed in
 *   float64 from the factors' Grams, is at most {@link MAX_MODULE_NORM}, so
 *   no product of the merge overflows float32.
 */

import { AdapterFormatError, PEFT_PREFIX } from "@tributary/protocol";
import type { Federation } from "../core/model.ts";
import { factorGrams64, gramTrace } from "../merge/grams.ts";
import { lazyAdapter } from "../peft/lazy-adapter.ts";
import {
  checkTensorsAgainstSchema,
  parseUpdateConfig,
  type TensorInfo,
  updateLabel,
} from "./adapter-schema.ts";
import { InvalidUpdateError } from "./errors.ts";

/** Smallest LoRA scaling accepted. */
export const MIN_SCALING = 1e-6;
/** Largest LoRA scaling accepted. */
export const MAX_SCALING = 1e6;
/** Largest magnitude of a factor value accepted (the largest float16). */
export const MAX_FACTOR_VALUE = 65504;
/** Largest module task-vector norm `‖s·B·A‖_F` accepted. */
export const MAX_MODULE_NORM = 1e6;

/** What `validateUpdateStream` needs. */
export interface UpdateStream {
  readonly federation: Federation;
  readonly clientId: string;
  /** The header's `adapter_config.json`. */
  readonly configJson: string;
  /** The staged file's safetensors header: tensor name → dtype and shape, in file order. */
  readonly tensors: ReadonlyMap<string, TensorInfo>;
  /**
   * The raw little-endian bytes of one tensor of the staged file. It is asked
   * for one module's two tensors at a time, and nothing of a module is kept
   * once the next module's are asked for: a reader may hand out the same
   * buffers again.
   */
  readonly readTensor: (name: string) => Promise<Uint8Array>;
}

/** What intake learnt of each module of an accepted update. */
export interface ModuleSummary {
  readonly rank: number;
  readonly scaling: number;
  /** `‖s·B·A‖_F`, float64. */
  readonly norm: number;
}

/** The canonical PEFT tensor name of factor `factor` of `module`. */
export function canonicalLoraName(module: string, factor: "A" | "B"): string {
  return `${PEFT_PREFIX}${module}.lora_${factor}.weight`;
}

/** The first index of `data` whose magnitude exceeds `limit` (or is not finite), else -1. */
function firstOutOfRange(data: Float32Array, limit: number): number {
  for (let i = 0; i < data.length; i++) if (!(Math.abs(data[i]) <= limit)) return i;
  return -1;
}

/**
 * Whether every diagonal entry of the `r × r` Gram `g` is at most `bound`
 * (false for NaN). A Gram's diagonal entry is a sum of squares of factor
 * values, never below the square of any one of them (float64 products of
 * float32 values are exact, and rounding a sum of non-negative terms is
 * monotone): all entries within `MAX_FACTOR_VALUE²` prove every value finite
 * and within `±MAX_FACTOR_VALUE` without a pass over the values.
 */
function diagonalWithin(g: Float64Array, r: number, bound: number): boolean {
  for (let i = 0; i < r; i++) if (!(g[i * r + i] <= bound)) return false;
  return true;
}

/**
 * Checks a staged update module by module through the merge's own reader;
 * returns what it learnt of each module. Throws `InvalidUpdateError` naming
 * the client and the tensor, module or field at fault.
 *
 * @example
 * const modules = await validateUpdateStream({
 *   federation, clientId, configJson, tensors: header.tensors,
 *   readTensor: (name) => staged.read(header.offsets.get(name)!),
 * });
 */
export async function validateUpdateStream(req: UpdateStream): Promise<Map<string, ModuleSummary>> {
  const { federation, clientId, tensors } = req;
  const label = updateLabel(clientId);
  const config = parseUpdateConfig(federation.schema, clientId, req.configJson);
  checkTensorsAgainstSchema(federation.schema, clientId, config, tensors);
  let lazy: ReturnType<typeof lazyAdapter>;
  try {
    // Values are checked below, from the Grams' diagonals (and a scan only where one is too large).
    lazy = lazyAdapter(req.configJson, tensors, req.readTensor, label, undefined, false);
  } catch (err) {
    if (err instanceof AdapterFormatError) {
      throw new InvalidUpdateError(clientId, err.message, {
        ...(err.tensor ? { tensor: err.tensor } : {}),
        cause: err,
      });
    }
    throw err;
  }
  const summaries = new Map<string, ModuleSummary>();
  for (const spec of federation.schema.modules) {
    const plan = lazy.modules.get(spec.name);
    const fail = (detail: string, tensor?: string): never => {
      throw new InvalidUpdateError(clientId, detail, { module: spec.name, ...(tensor ? { tensor } : {}) });
    };
    if (plan === undefined) return fail(`module ${spec.name} is missing from the adapter`);
    for (const [name, factor] of [
      [plan.aName, "A"],
      [plan.bName, "B"],
    ] as const) {
      const canonical = canonicalLoraName(spec.name, factor);
      if (name !== canonical) {
        fail(
          `tensor "${name}" is not in the canonical PEFT form "${canonical}" (as save_pretrained writes it)`,
          name,
        );
      }
    }
    if (!(plan.scaling >= MIN_SCALING && plan.scaling <= MAX_SCALING)) {
      throw new InvalidUpdateError(
        clientId,
        `module ${spec.name} has LoRA scaling ${plan.scaling} (lora_alpha / r from adapter_config.json), expected ${MIN_SCALING} to ${MAX_SCALING}`,
        { module: spec.name, field: "lora_alpha" },
      );
    }
    let module: Awaited<ReturnType<typeof lazy.loadModule>>;
    try {
      module = await lazy.loadModule(spec.name);
    } catch (err) {
      if (err instanceof AdapterFormatError) {
        throw new InvalidUpdateError(clientId, err.message, {
          module: spec.name,
          ...(err.tensor ? { tensor: err.tensor } : {}),
          cause: err,
        });
      }
      throw err;
    }
    const { btb, aat } = factorGrams64(module, module.dOut, module.dIn);
    const bound = MAX_FACTOR_VALUE * MAX_FACTOR_VALUE;
    if (!diagonalWithin(btb, module.rank, bound) || !diagonalWithin(aat, module.rank, bound)) {
      for (const [name, data] of [
        [plan.aName, module.a],
        [plan.bName, module.b],
      ] as const) {
        const bad = firstOutOfRange(data, MAX_FACTOR_VALUE);
        if (bad >= 0 && !Number.isFinite(data[bad])) {
          fail(`tensor "${name}" has non-finite value ${data[bad]} at index ${bad}`, name);
        }
        if (bad >= 0) {
          fail(`tensor "${name}" has value ${data[bad]} at index ${bad}, beyond ±${MAX_FACTOR_VALUE}`, name);
        }
      }
    }
    const norm = plan.scaling * Math.sqrt(Math.max(0, gramTrace(btb, aat)));
    if (!(norm <= MAX_MODULE_NORM)) {
      fail(
        `module ${spec.name} has task-vector norm ‖s·B·A‖ = ${norm.toPrecision(4)}, above ${MAX_MODULE_NORM}`,
      );
    }
    summaries.set(spec.name, { rank: module.rank, scaling: plan.scaling, norm });
  }
  return summaries;
}
