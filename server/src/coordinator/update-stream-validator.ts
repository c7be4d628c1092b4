/**
 * The streaming form of `validateUpdateContent` for large adapters: the
 * schema is checked from the safetensors header alone, then each tensor is
 * read, decoded and scanned for NaN/Inf one at a time, so memory stays
 * bounded by the largest tensor rather than the whole adapter.
 */

import { AdapterFormatError, formatShape, parseLoraKey } from "@tributary/protocol";
import type { Federation } from "../core/model.ts";
import { DTYPE_BYTES, firstUnrepresentable, isTensorDType } from "../peft/dtype.ts";
import { decodeTensorF32 } from "../peft/safetensors.ts";
import {
  checkTensorsAgainstSchema,
  parseUpdateConfig,
  type TensorInfo,
  updateLabel,
} from "./adapter-schema.ts";
import { InvalidUpdateError } from "./errors.ts";

/** What `validateUpdateStream` needs. */
export interface UpdateStream {
  readonly federation: Federation;
  readonly clientId: string;
  /** The header's `adapter_config.json`. */
  readonly configJson: string;
  /** The staged file's safetensors header: tensor name → dtype and shape, in file order. */
  readonly tensors: ReadonlyMap<string, TensorInfo>;
  /** The raw little-endian bytes of one tensor of the staged file. */
  readonly readTensor: (name: string) => Promise<Uint8Array>;
}

function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/**
 * Checks a staged update tensor by tensor. Throws `InvalidUpdateError` for a
 * config or schema mismatch (before reading any tensor), a tensor whose byte
 * count does not match its dtype and shape, or a non-finite value (naming the
 * tensor and the first bad index).
 *
 * @example
 * await validateUpdateStream({
 *   federation, clientId, configJson, tensors: header.tensors,
 *   readTensor: (name) => staged.read(header.offsets.get(name)!),
 * });
 */
export async function validateUpdateStream(req: UpdateStream): Promise<void> {
  const { federation, clientId, tensors } = req;
  const file = `${updateLabel(clientId)}/adapter_model.safetensors`;
  const config = parseUpdateConfig(federation.schema, clientId, req.configJson);
  checkTensorsAgainstSchema(federation.schema, clientId, config, tensors);
  for (const [name, info] of tensors) {
    const where = { tensor: name, module: parseLoraKey(name)?.module };
    const bytes = await req.readTensor(name);
    // The schema check only lets F32/F16/BF16 through.
    const width = isTensorDType(info.dtype) ? DTYPE_BYTES[info.dtype] : 0;
    const expected = numel(info.shape) * width;
    if (bytes.length !== expected) {
      throw new InvalidUpdateError(
        clientId,
        `${file}: tensor "${name}" has ${bytes.length} bytes, expected ${expected} for ${info.dtype} ${formatShape(info.shape)}`,
        where,
      );
    }
    let data: Float32Array;
    try {
      data = decodeTensorF32({ dtype: info.dtype, shape: [...info.shape], bytes }, file, name);
    } catch (err) {
      if (err instanceof AdapterFormatError) {
        throw new InvalidUpdateError(clientId, err.message, { ...where, cause: err });
      }
      throw err;
    }
    const bad = firstUnrepresentable(data);
    if (bad >= 0) {
      throw new InvalidUpdateError(
        clientId,
        `${file}: tensor "${name}" has non-finite value ${data[bad]} at index ${bad}`,
        where,
      );
    }
  }
}
