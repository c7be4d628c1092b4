/**
 * A safetensors file's header read from disk without its data: the 8-byte
 * length, the JSON header, and the same checks `parseSafetensors` applies
 * (known dtypes, byte counts matching shapes, tensors tiling the data buffer
 * exactly), against the file's size instead of its bytes.
 */
import type { FileHandle } from "node:fs/promises";
import { AdapterFormatError, formatShape, MAX_HEADER_BYTES, SAFETENSORS_DTYPE_BYTES } from "../peft/index.ts";
import { readAt } from "./fs-util.ts";
import type { StoredTensorInfo } from "./store.ts";

/** A parsed header: tensors in header order with absolute offsets, and `__metadata__`. */
export interface SafetensorsHeader {
  readonly tensors: Map<string, StoredTensorInfo>;
  readonly metadata: Record<string, string>;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
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
  const fail = (msg: string, tensor?: string, cause?: unknown): never => {
    throw new AdapterFormatError(
      `${file}: ${msg}`,
      file,
      tensor,
      cause === undefined ? undefined : { cause },
    );
  };
  if (size < 8) fail(`file is ${size} bytes, shorter than the 8-byte header length`);
  const lenBytes = await readAt(handle, 0, 8);
  const headerLen = new DataView(lenBytes.buffer, lenBytes.byteOffset, 8).getBigUint64(0, true);
  if (headerLen > BigInt(MAX_HEADER_BYTES)) {
    fail(`header length ${headerLen} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  }
  const n = Number(headerLen);
  if (8 + n > size) fail(`header length ${n} runs past the end of the ${size}-byte file (truncated)`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(await readAt(handle, 8, n)));
  } catch (err) {
    fail(
      `header is not valid UTF-8 JSON (${err instanceof Error ? err.message : String(err)})`,
      undefined,
      err,
    );
  }
  if (!isRecord(header)) return fail("header is not a JSON object");
  const dataStart = 8 + n;
  const dataLen = size - dataStart;
  const tensors = new Map<string, StoredTensorInfo>();
  const spans: { name: string; begin: number; end: number }[] = [];
  for (const [name, info] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    const where = `tensor "${name}"`;
    if (!isRecord(info)) return fail(`${where} is not an object with dtype, shape and data_offsets`, name);
    const { dtype, shape, data_offsets: offsets } = info;
    if (typeof dtype !== "string" || SAFETENSORS_DTYPE_BYTES[dtype] === undefined) {
      return fail(`${where} has unknown dtype ${JSON.stringify(dtype)}`, name);
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      return fail(`${where} has shape ${JSON.stringify(shape)}, expected non-negative integers`, name);
    }
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
      offsets[0] > offsets[1] ||
      offsets[1] > dataLen
    ) {
      return fail(
        `${where} has data_offsets ${JSON.stringify(offsets)}, expected [begin, end] with 0 ≤ begin ≤ end ≤ ${dataLen}`,
        name,
      );
    }
    const [begin, end] = offsets as [number, number];
    const dims = shape as number[];
    const expected = dims.reduce((p, d) => p * d, 1) * SAFETENSORS_DTYPE_BYTES[dtype];
    if (expected !== end - begin) {
      fail(`${where} has ${end - begin} bytes, expected ${expected} for ${dtype} ${formatShape(dims)}`, name);
    }
    tensors.set(name, { dtype, shape: dims, byteLength: end - begin, offset: dataStart + begin });
    spans.push({ name, begin, end });
  }
  spans.sort((x, y) => x.begin - y.begin || x.end - y.end);
  let cursor = 0;
  for (const s of spans) {
    if (s.begin !== cursor) {
      fail(
        `tensor "${s.name}" starts at data offset ${s.begin}, expected ${cursor} (overlap or gap)`,
        s.name,
      );
    }
    cursor = s.end;
  }
  if (cursor !== dataLen)
    fail(`${dataLen - cursor} bytes after the last tensor are not covered by any tensor`);
  return { tensors, metadata: parseMetadata(header.__metadata__, fail) };
}

function parseMetadata(raw: unknown, fail: (msg: string) => never): Record<string, string> {
  if (raw === undefined || raw === null) return {};
  if (!isRecord(raw)) return fail("__metadata__ is not an object of strings");
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (typeof v !== "string")
      fail(`__metadata__ value of "${k}" is ${JSON.stringify(v)}, expected a string`);
    out[k] = v as string;
  }
  return out;
}
