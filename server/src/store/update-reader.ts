/**
 * Lazy readers of stored files: an update read tensor by tensor with
 * positioned reads of exactly each tensor's range (so a merge over many
 * clients holds one module per client, never whole files), and plain
 * positioned reads for chunked fetches of merged adapters.
 */
import { type FileHandle, open } from "node:fs/promises";
import type { ByteReader, UpdateReader } from "../core/store.ts";
import { readAt } from "./fs-util.ts";
import { readSafetensorsHeader } from "./safetensors-header.ts";

/** Something the store closes when it closes. */
export interface Closable {
  close(): Promise<void>;
}

/** Open readers of a store, closed with it. */
export type ReaderRegistry = Set<Closable>;

function tracked<T extends Closable>(handle: FileHandle, registry: ReaderRegistry, reader: T): T {
  let closed = false;
  const entry: Closable = {
    async close() {
      if (closed) return;
      closed = true;
      registry.delete(entry);
      await handle.close();
    },
  };
  registry.add(entry);
  return { ...reader, close: () => entry.close() };
}

/**
 * Opens the safetensors file at `path` and parses its header. Throws
 * `AdapterFormatError` naming `label` for a malformed header, and the
 * file-system error (`ENOENT`, …) when it cannot be opened.
 *
 * @example
 * const reader = await openUpdateReader(path, "federation f round 2 client c", readers);
 * const a = await reader.read("base_model.model.q_proj.lora_A.weight");
 */
export async function openUpdateReader(
  path: string,
  label: string,
  registry: ReaderRegistry,
): Promise<UpdateReader> {
  const handle = await open(path, "r");
  try {
    const { size } = await handle.stat();
    const { tensors, metadata } = await readSafetensorsHeader(handle, size, label);
    return tracked(handle, registry, {
      label,
      size,
      path,
      tensors,
      metadata,
      async read(name: string) {
        const info = tensors.get(name);
        if (info === undefined) throw new RangeError(`${label}: no tensor "${name}"`);
        const bytes = await readAt(handle, info.offset, info.byteLength);
        if (bytes.length !== info.byteLength) {
          throw new Error(`${label}: tensor "${name}" is cut short (the file shrank while open)`);
        }
        return bytes;
      },
      close: async () => undefined,
    });
  } catch (err) {
    await handle.close();
    throw err;
  }
}

/** Opens `path` for positioned reads. */
export async function openByteReader(path: string, registry: ReaderRegistry): Promise<ByteReader> {
  const handle = await open(path, "r");
  const { size } = await handle.stat().catch(async (err: unknown) => {
    await handle.close();
    throw err;
  });
  return tracked(handle, registry, {
    size,
    async read(position: number, length: number) {
      if (!Number.isSafeInteger(position) || position < 0 || !Number.isSafeInteger(length) || length < 0) {
        throw new RangeError(`${path}: cannot read ${length} bytes at ${position}`);
      }
      return readAt(handle, position, Math.max(0, Math.min(length, size - position)));
    },
    close: async () => undefined,
  });
}
