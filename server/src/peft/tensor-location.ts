/**
 * Where a tensor's bytes lie in a file, so that another thread (a merge
 * worker reading a module's factors again on every pass) can read and decode
 * it synchronously, with the same checks as the lazy reader: the exact byte
 * count, and NaN/Inf rejected naming the file and tensor.
 */
import { AdapterFormatError } from "@tributary/protocol";
import { finiteF32 } from "./adapter-codec.ts";
import { readAtSync } from "./file-read.ts";
import { decodeTensorF32 } from "./safetensors.ts";

/** A tensor in a file. */
export interface TensorLocation {
  /** The file to read. */
  readonly path: string;
  /** How messages name the file (`client c/adapter_model.safetensors`). */
  readonly file: string;
  /** The tensor's name in the file. */
  readonly name: string;
  readonly dtype: string;
  readonly shape: readonly number[];
  /** Absolute byte offset and length of its data. */
  readonly offset: number;
  readonly byteLength: number;
}

/**
 * Reads the tensor at `loc` from the open file descriptor `fd`, decoded to
 * float32. With `scratch` (at least `byteLength` bytes) the bytes go there,
 * and F32 data is returned as a view of it, valid until the scratch is
 * reused. `check: false` skips the NaN/Inf scan (for a tensor already read
 * and checked).
 */
export function readTensorSync(
  loc: TensorLocation,
  fd: number,
  scratch?: Uint8Array,
  check = true,
): Float32Array {
  const bytes = scratch === undefined ? new Uint8Array(loc.byteLength) : scratch.subarray(0, loc.byteLength);
  if (readAtSync(fd, loc.offset, bytes) !== loc.byteLength) {
    throw new AdapterFormatError(
      `${loc.file}: tensor "${loc.name}" is cut short (the file shrank)`,
      loc.file,
      loc.name,
    );
  }
  // The bytes are ours: F32 is decoded in place.
  const tensor = { dtype: loc.dtype, shape: [...loc.shape], bytes };
  return check
    ? finiteF32(tensor, loc.file, loc.name, true)
    : decodeTensorF32(tensor, loc.file, loc.name, true);
}
