/**
 * PEFT LoRA adapter I/O: `adapter_config.json` + `adapter_model.safetensors`
 * (F32/F16/BF16) to validated F32 LoRA factors and back.
 *
 * @example
 * const adapter = await readAdapter("clients/7/adapter");
 * await writeAdapter("merged", { template: adapter.config, modules, dense: adapter.dense, dtype: adapter.dtype });
 */

export {
  AdapterFormatError,
  DTYPE_BYTES,
  decodeFloats,
  encodeFloats,
  f16BitsToNumber,
  f32BitsToBf16Bits,
  f32BitsToF16Bits,
  firstUnrepresentable,
  formatShape,
  isTensorDType,
  type LoraKey,
  loraKey,
  MAX_HEADER_BYTES,
  PEFT_PREFIX,
  parseLoraKey,
  parseSafetensorsLayout,
  SAFETENSORS_DTYPE_BYTES,
  type SafetensorsLayout,
  type SafetensorsTensorLayout,
  safetensorsHeaderLength,
  type TensorDType,
} from "@tributary/protocol";
export { CONFIG_FILE, decodeAdapter, encodeAdapter, WEIGHTS_FILE } from "./adapter-codec.ts";
export {
  type AdapterConfig,
  adapterConfigFromObject,
  alphaFor,
  DEFAULT_ALPHA,
  DEFAULT_RANK,
  parseAdapterConfig,
  patternMatches,
  rankFor,
  scalingFor,
} from "./adapter-config.ts";
export { type OpenAdapterDir, openAdapterDir, readAdapter, writeAdapter } from "./adapter-dir.ts";
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
  type LazyAdapter,
  lazyAdapter,
  placesIn,
  type TensorPlace,
  type TensorReader,
} from "./lazy-adapter.ts";
export {
  decodeTensorF32,
  parseSafetensors,
  type SafetensorsEntry,
  type SafetensorsFile,
  type SafetensorsTensor,
  serializeSafetensors,
} from "./safetensors.ts";
export { readTensorSync, type TensorLocation } from "./tensor-location.ts";
