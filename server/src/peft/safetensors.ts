/**
 * Whole safetensors files (https://github.com/huggingface/safetensors):
 * parsing into views of the input without copying, after the header checks of
 * `@tributary/protocol`'s reader, and writing.
 */
import {
  AdapterFormatError,
  decodeFloats,
  encodeFloats,
  formatShape,
  isTensorDType,
  numel,
  parseSafetensorsLayout,
  safetensorsHeaderLength,
  type TensorDType,
} from "@tributary/protocol";

/** One tensor of a parsed file; `bytes` is a view into the file, not a copy. */
export interface SafetensorsTensor {
  readonly dtype: string;
  readonly shape: number[];
  readonly bytes: Uint8Array;
}

/** A parsed safetensors file. */
export interface SafetensorsFile {
  readonly metadata: Record<string, string>;
  /** Tensors in header order. */
  readonly tensors: Map<string, SafetensorsTensor>;
}

/** One tensor to write. */
export interface SafetensorsEntry {
  readonly name: string;
  readonly dtype: TensorDType;
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

/**
 * Parses and validates a safetensors file. Throws `AdapterFormatError` naming
 * `file` (and the tensor) for anything the spec does not allow.
 *
 * @example
 * const { metadata, tensors } = parseSafetensors(await readFile(path), path);
 */
export function parseSafetensors(bytes: Uint8Array, file: string): SafetensorsFile {
  const n = safetensorsHeaderLength(bytes, bytes.length, file);
  const layout = parseSafetensorsLayout(bytes.subarray(8, 8 + n), bytes.length, file);
  const tensors = new Map<string, SafetensorsTensor>();
  for (const [name, t] of layout.tensors) {
    tensors.set(name, {
      dtype: t.dtype,
      shape: t.shape,
      bytes: bytes.subarray(t.offset, t.offset + t.byteLength),
    });
  }
  return { metadata: layout.metadata, tensors };
}

/**
 * Writes tensors contiguously in the given order after a header padded with
 * spaces to a multiple of 8 bytes. Throws `AdapterFormatError` naming `file`
 * for a duplicate or reserved name or data that does not match its shape.
 *
 * @example
 * const bytes = serializeSafetensors([{ name: "w", dtype: "F16", shape: [2], data }], { format: "pt" });
 */
export function serializeSafetensors(
  entries: readonly SafetensorsEntry[],
  metadata?: Readonly<Record<string, string>>,
  file = "adapter_model.safetensors",
): Uint8Array {
  // Null prototype: a tensor named "__proto__" must become a plain key.
  const header: Record<string, unknown> = Object.create(null);
  if (metadata !== undefined && Object.keys(metadata).length > 0) header.__metadata__ = { ...metadata };
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const e of entries) {
    if (e.name === "__metadata__" || Object.hasOwn(header, e.name)) {
      throw new AdapterFormatError(`${file}: duplicate or reserved tensor name "${e.name}"`, file, e.name);
    }
    if (numel(e.shape) !== e.data.length || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new AdapterFormatError(
        `${file}: tensor "${e.name}" has ${e.data.length} values, expected shape ${formatShape(e.shape)}`,
        file,
        e.name,
      );
    }
    const chunk = encodeFloats(e.data, e.dtype);
    header[e.name] = { dtype: e.dtype, shape: [...e.shape], data_offsets: [offset, offset + chunk.length] };
    chunks.push(chunk);
    offset += chunk.length;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerLen = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + headerLen + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLen), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLen);
  let at = 8 + headerLen;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/**
 * A tensor's values as a new `Float32Array`: F32, F16 and BF16 are decoded,
 * F64 is narrowed; any other dtype throws `AdapterFormatError`. With
 * `handedOver`, aligned F32 bytes are viewed instead of copied (see
 * `decodeFloats`).
 */
export function decodeTensorF32(
  tensor: SafetensorsTensor,
  file: string,
  name: string,
  handedOver = false,
): Float32Array {
  if (isTensorDType(tensor.dtype)) return decodeFloats(tensor.bytes, tensor.dtype, handedOver);
  if (tensor.dtype === "F64") {
    const n = tensor.bytes.length / 8;
    const out = new Float32Array(n);
    const view = new DataView(tensor.bytes.buffer, tensor.bytes.byteOffset, tensor.bytes.byteLength);
    for (let i = 0; i < n; i++) out[i] = view.getFloat64(8 * i, true);
    return out;
  }
  throw new AdapterFormatError(
    `${file}: unsupported dtype ${tensor.dtype} for tensor "${name}" (expected F32, F16 or BF16)`,
    file,
    name,
  );
}
