/**
 * The safetensors header (https://github.com/huggingface/safetensors), the
 * one reader every Tributary package uses: an 8-byte little-endian u64
 * header length `N`, `N` bytes of UTF-8 JSON mapping each tensor name to
 * `{dtype, shape, data_offsets: [begin, end]}` (offsets relative to the data
 * buffer) plus an optional `__metadata__` string→string map, then the data.
 * The checks are everything the spec requires, including that the tensors
 * tile the data buffer exactly; the data itself is not read.
 */
import { AdapterFormatError } from "./errors.ts";
import { jsonNestingDepth } from "./json-depth.ts";

/** Deepest nesting a header may have (tensor → `shape` / `data_offsets` is 3). */
const MAX_HEADER_DEPTH = 4;

/** Largest header accepted, as in the reference implementation. */
export const MAX_HEADER_BYTES = 100_000_000;

/** Bytes per element of every dtype the safetensors spec defines. */
export const SAFETENSORS_DTYPE_BYTES: Readonly<Record<string, number>> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  I64: 8,
  U64: 8,
  F64: 8,
};

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Number of elements of a tensor of `shape` (1 for a scalar). */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** `[2, 3]`-style rendering of a shape for messages. */
export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}

type Fail = (msg: string, tensor?: string, cause?: unknown) => never;

interface Located {
  readonly name: string;
  readonly begin: number;
  readonly end: number;
}

/** Where one tensor's bytes are in a safetensors file. */
export interface SafetensorsTensorLayout {
  readonly dtype: string;
  readonly shape: number[];
  /** Absolute byte offset in the file. */
  readonly offset: number;
  readonly byteLength: number;
}

/** A validated header: tensors in header order, and `__metadata__`. */
export interface SafetensorsLayout {
  readonly metadata: Record<string, string>;
  readonly tensors: Map<string, SafetensorsTensorLayout>;
}

function failer(file: string): Fail {
  return (msg, tensor, cause) => {
    throw new AdapterFormatError(
      `${file}: ${msg}`,
      file,
      tensor,
      cause === undefined ? undefined : { cause },
    );
  };
}

/**
 * The header length from a file's first 8 bytes, checked against the limit
 * and the file size. Throws `AdapterFormatError` naming `file`.
 */
export function safetensorsHeaderLength(prefix: Uint8Array, fileSize: number, file: string): number {
  const fail = failer(file);
  if (fileSize < 8 || prefix.length < 8) {
    fail(`file is ${fileSize} bytes, shorter than the 8-byte header length`);
  }
  const headerLen = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (headerLen > BigInt(MAX_HEADER_BYTES)) {
    const head = prefix.subarray(0, 8);
    const text = head.every((b) => b >= 0x20 && b < 0x7f)
      ? `"${new TextDecoder().decode(head)}"`
      : [...head].map((b) => b.toString(16).padStart(2, "0")).join(" ");
    fail(
      `not a safetensors file: its first 8 bytes (${text}) would be a header length of ${headerLen} bytes, beyond the ${MAX_HEADER_BYTES}-byte limit for a header`,
    );
  }
  const n = Number(headerLen);
  if (8 + n > fileSize) fail(`header length ${n} runs past the end of the ${fileSize}-byte file (truncated)`);
  return n;
}

/**
 * Validates a safetensors header (the JSON bytes after the length prefix) of
 * a `fileSize`-byte file, without its data: dtypes, shapes, offsets in range,
 * byte lengths matching shape × dtype, and tensors tiling the data buffer.
 * Throws `AdapterFormatError` naming `file` (and the tensor).
 */
export function parseSafetensorsLayout(
  headerJson: Uint8Array,
  fileSize: number,
  file: string,
): SafetensorsLayout {
  const fail = failer(file);
  let header: unknown;
  try {
    // ignoreBOM: a byte-order mark stays in the text and is refused as not JSON.
    const text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(headerJson);
    if (jsonNestingDepth(text, MAX_HEADER_DEPTH) > MAX_HEADER_DEPTH) {
      return fail(`header JSON is nested deeper than ${MAX_HEADER_DEPTH} levels`);
    }
    header = JSON.parse(text);
  } catch (err) {
    fail(
      `header is not valid UTF-8 JSON (${err instanceof Error ? err.message : String(err)})`,
      undefined,
      err,
    );
  }
  if (!isRecord(header)) return fail("header is not a JSON object");
  const dataStart = 8 + headerJson.length;
  const dataLen = fileSize - dataStart;
  const metadata = parseMetadata(header.__metadata__, fail);
  const tensors = new Map<string, SafetensorsTensorLayout>();
  const located: Located[] = [];
  for (const [name, info] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    const where = `tensor "${name}"`;
    if (!isRecord(info)) fail(`${where} is not an object with dtype, shape and data_offsets`, name);
    const { dtype, shape, data_offsets: offsets } = info as Record<string, unknown>;
    if (typeof dtype !== "string" || SAFETENSORS_DTYPE_BYTES[dtype] === undefined) {
      fail(`${where} has unknown dtype ${JSON.stringify(dtype)}`, name);
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(`${where} has shape ${JSON.stringify(shape)}, expected an array of non-negative integers`, name);
    }
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
      offsets[0] > offsets[1]
    ) {
      fail(
        `${where} has data_offsets ${JSON.stringify(offsets)}, expected [begin, end] integers with 0 ≤ begin ≤ end`,
        name,
      );
    }
    const [begin, end] = offsets as [number, number];
    if (end > dataLen) {
      fail(
        `${where} has data_offsets [${begin}, ${end}] out of range: the data buffer is ${dataLen} bytes (truncated)`,
        name,
      );
    }
    const dims = shape as number[];
    const expected = numel(dims) * SAFETENSORS_DTYPE_BYTES[dtype as string];
    if (expected !== end - begin) {
      fail(`${where} has ${end - begin} bytes, expected ${expected} for ${dtype} ${formatShape(dims)}`, name);
    }
    tensors.set(name, {
      dtype: dtype as string,
      shape: dims,
      offset: dataStart + begin,
      byteLength: end - begin,
    });
    located.push({ name, begin, end });
  }
  checkCoverage(located, dataLen, fail);
  return { metadata, tensors };
}

/**
 * Reads and validates the header of a `size`-byte safetensors file through
 * `read(offset, length)` (a file handle, an object store, a buffer), without
 * reading its data. Throws `AdapterFormatError` naming `file` (and the tensor).
 *
 * @example
 * const layout = await readSafetensorsLayout((at, n) => readAt(handle, at, n), size, "update.safetensors");
 */
export async function readSafetensorsLayout(
  read: (offset: number, length: number) => Promise<Uint8Array>,
  size: number,
  file: string,
): Promise<SafetensorsLayout> {
  const prefix = size < 8 ? new Uint8Array(0) : await read(0, 8);
  const n = safetensorsHeaderLength(prefix, size, file);
  return parseSafetensorsLayout(await read(8, n), size, file);
}

/** The optional `__metadata__` map; `null` reads as absent. */
function parseMetadata(raw: unknown, fail: Fail): Record<string, string> {
  if (raw === undefined || raw === null) return {};
  if (!isRecord(raw)) return fail("__metadata__ is not an object of strings");
  for (const [k, v] of Object.entries(raw)) {
    if (typeof v !== "string")
      fail(`__metadata__ value of "${k}" is ${JSON.stringify(v)}, expected a string`);
  }
  return Object.fromEntries(Object.entries(raw)) as Record<string, string>;
}

/** The spec requires the tensors to tile the data buffer: no overlap, no gap, no trailing bytes. */
function checkCoverage(located: Located[], dataLen: number, fail: Fail): void {
  located.sort((x, y) => x.begin - y.begin || x.end - y.end);
  let cursor = 0;
  let previous: Located | undefined;
  for (const t of located) {
    if (t.begin < cursor) {
      fail(
        `tensor "${t.name}" [${t.begin}, ${t.end}] overlaps tensor "${previous?.name}" [${previous?.begin}, ${previous?.end}]`,
        t.name,
      );
    }
    if (t.begin > cursor) {
      fail(`gap of ${t.begin - cursor} bytes before tensor "${t.name}" at data offset ${cursor}`, t.name);
    }
    cursor = t.end;
    previous = t;
  }
  if (cursor !== dataLen) {
    fail(`${dataLen - cursor} trailing bytes after the last tensor (data buffer is ${dataLen} bytes)`);
  }
}
