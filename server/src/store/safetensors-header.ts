/**
 * A stored safetensors file's header read from disk without its data, through
 * `@tributary/protocol`'s one header reader (known dtypes, byte counts
 * matching shapes, tensors tiling the data buffer exactly), against the
 * file's size instead of its bytes.
 */
import type { FileHandle } from "node:fs/promises";
import { readSafetensorsLayout } from "@tributary/protocol";
import type { StoredTensorInfo } from "../core/store.ts";
import { readAt } from "./fs-util.ts";

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
  const layout = await readSafetensorsLayout((at, n) => readAt(handle, at, n), size, file);
  return { tensors: layout.tensors, metadata: layout.metadata };
}
