/**
 * A safetensors file's header read from disk without its data: the 8-byte
 * length, the JSON header, and the same checks `parseSafetensors` applies
 * (known dtypes, byte counts matching shapes, tensors tiling the data buffer
 * exactly, via the same `parseSafetensorsLayout`), against the file's size
 * instead of its bytes.
 */
import type { FileHandle } from "node:fs/promises";
import { parseSafetensorsLayout, safetensorsHeaderLength } from "../peft/safetensors.ts";
import { readAt } from "./fs-util.ts";
import type { StoredTensorInfo } from "./store.ts";

/** A parsed header: tensors in header order with absolute offsets, and `__metadata__`. */
export interface SafetensorsHeader {
  readonly tensors: Map<string, StoredTensorInfo>;
  readonly metadata: Record<string, string>;
}

/**
 * Reads and validates the header of the `size`-byte safetensors file open as
 * `handle`. Throws `AdapterFormatError` naming `file` (and the tensor).
 */
export async function readSafetensorsHeader(
  handle: FileHandle,
  size: number,
  file: string,
): Promise<SafetensorsHeader> {
  const prefix = size < 8 ? new Uint8Array(0) : await readAt(handle, 0, 8);
  const n = safetensorsHeaderLength(prefix, size, file);
  const layout = parseSafetensorsLayout(await readAt(handle, 8, n), size, file);
  return { tensors: layout.tensors, metadata: layout.metadata };
}
