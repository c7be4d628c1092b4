/**
 * PEFT LoRA adapter I/O: `adapter_config.json` + `adapter_model.safetensors`
 * (F32/F16/BF16) to validated F32 LoRA factors and back.
 *
 * @example
 * const adapter = await readAdapter("clients/7/adapter");
 * await writeAdapter("merged", { template: adapter.config, modules, dense: adapter.dense, dtype: adapter.dtype });
 */

export { CONFIG_FILE, decodeAdapter, encodeAdapter, WEIGHTS_FILE } from "./adapter-codec.ts";
export {
  type AdapterConfig,
  adapterConfigFromObject,
  alphaFor,
  DEFAULT_ALPHA,
  DEFAULT_RANK,
  parseAdapterConfig,
  patternRegExp,
  rankFor,
  scalingFor,
} from "./adapter-config.ts";
export { readAdapter, writeAdapter } from "./adapter-dir.ts";
export { type AdapterPlan, type ModulePlan, planAdapter, type TensorInfo } from "./adapter-plan.ts";
export type {
  AdapterOutput,
  DenseTensor,
  LoraLayout,
  LoraModule,
  OutputModule,
  PeftAdapter,
} from "./adapter-types.ts";
export {
  DTYPE_BYTES,
  decodeFloats,
  encodeFloats,
  f16BitsToNumber,
  f32BitsToBf16Bits,
  f32BitsToF16Bits,
  firstUnrepresentable,
  isTensorDType,
  type TensorDType,
} from "./dtype.ts";
export { AdapterFormatError } from "./errors.ts";
export { type LazyAdapter, lazyAdapter, type TensorReader } from "./lazy-adapter.ts";
export { type LoraKey, loraKey, PEFT_PREFIX, parseLoraKey } from "./lora-keys.ts";
export {
  decodeTensorF32,
  formatShape,
  MAX_HEADER_BYTES,
  parseSafetensors,
  parseSafetensorsLayout,
  SAFETENSORS_DTYPE_BYTES,
  type SafetensorsEntry,
  type SafetensorsFile,
  type SafetensorsLayout,
  type SafetensorsTensor,
  type SafetensorsTensorLayout,
  safetensorsHeaderLength,
  serializeSafetensors,
} from "./safetensors.ts";
