/**
 * What a module-merge task and its result look like on the wire. A task
 * names where each client's two factors lie — an object of the store's
 * bucket (a committed update) and the tensor's place in it — never the
 * factors themselves, so a task is a few kilobytes whatever the model. A
 * result carries the merged factors and the method's report; an input the
 * merge could not use comes back as the typed error the leader would have
 * met merging it itself, so it leaves the same client out.
 */
import { AdapterFormatError } from "@tributary/protocol";
import type { ModuleFiles } from "../core/merge-runner.ts";
import { MergeInputError, MergeOptionsError } from "../merge/errors.ts";
import type { MergeOptions } from "../merge/options.ts";
import type { ModuleMergeResult } from "../merge/types.ts";
import type { TensorLocation } from "../peft/tensor-location.ts";
import type { StoredObjectRef } from "../store-jetstream/object-cache.ts";

/** A committed object of the store's bucket: its name, size and sha256. */
export type ObjectRef = StoredObjectRef;

/** A tensor inside a stored object: where it lies in the object's bytes. */
export interface StoredTensor {
  readonly object: ObjectRef;
  readonly at: Omit<TensorLocation, "path">;
}

/** One module to merge. */
export interface MergeTask {
  /** Unique per task; a redelivered task keeps it. */
  readonly id: string;
  /** The subject its result is published on. */
  readonly replyTo: string;
  /** The module, as `ModuleFiles` with each factor in a stored object instead of a local file. */
  readonly module: Omit<ModuleFiles, "clients"> & {
    readonly clients: readonly (Omit<ModuleFiles["clients"][number], "a" | "b"> & {
      readonly a: StoredTensor;
      readonly b: StoredTensor;
    })[];
  };
  readonly opts: MergeOptions;
}

/** Why a worker could not merge a task's module: the error, rebuilt on the leader by {@link taskError}. */
export interface TaskFailure {
  readonly kind: "adapter" | "input" | "options" | "failed";
  readonly message: string;
  readonly file?: string;
  readonly tensor?: string;
  readonly module?: string;
  readonly client?: number;
}

/** What a worker publishes when it is done with a task. */
export interface TaskOutcome {
  readonly taskId: string;
  /** The worker's id. */
  readonly worker: string;
  /** How many times the task had been delivered (more than 1: redelivered). */
  readonly delivery: number;
  /**
   * The object holding the encoded result ({@link encodeModuleResult}), when
   * it merged and the result is too large to travel in the outcome message.
   */
  readonly resultObject?: ObjectRef;
  /** Merge time on the worker, ms. */
  readonly ms?: number;
  readonly failure?: TaskFailure;
}

/** JSON with non-finite numbers kept (`Infinity` is a valid norm bound, `NaN` a valid "none"). */
function replacer(_key: string, value: unknown): unknown {
  if (typeof value === "number" && !Number.isFinite(value)) return { $number: String(value) };
  return value;
}

function reviver(_key: string, value: unknown): unknown {
  if (
    value !== null &&
    typeof value === "object" &&
    Object.keys(value).length === 1 &&
    typeof (value as { $number?: unknown }).$number === "string"
  ) {
    return Number((value as { $number: string }).$number);
  }
  return value;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** `value` as JSON bytes, non-finite numbers kept. */
export function encodeJson(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value, replacer));
}

/** The inverse of {@link encodeJson}. */
export function decodeJson<T>(bytes: Uint8Array): T {
  return JSON.parse(decoder.decode(bytes), reviver) as T;
}

/**
 * A task for `files`, each local path replaced by the object it is a copy
 * of; `undefined` when a path is not a copy of a stored object (`locate`).
 */
export function taskFor(
  id: string,
  replyTo: string,
  files: ModuleFiles,
  opts: MergeOptions,
  locate: (path: string) => ObjectRef | undefined,
): MergeTask | undefined {
  const stored = (loc: TensorLocation): StoredTensor | undefined => {
    const object = locate(loc.path);
    if (object === undefined) return undefined;
    const { path: _path, ...at } = loc;
    return { object, at };
  };
  const clients: MergeTask["module"]["clients"][number][] = [];
  for (const c of files.clients) {
    const a = stored(c.a);
    const b = stored(c.b);
    if (a === undefined || b === undefined) return undefined;
    clients.push({ rank: c.rank, scaling: c.scaling, a, b });
  }
  return { id, replyTo, module: { name: files.name, dIn: files.dIn, dOut: files.dOut, clients }, opts };
}

/** The task's module as files on this machine, given where each object's verified copy lies. */
export function filesOf(task: MergeTask, pathOf: (object: ObjectRef) => string): ModuleFiles {
  const { name, dIn, dOut, clients } = task.module;
  return {
    name,
    dIn,
    dOut,
    clients: clients.map((c) => ({
      rank: c.rank,
      scaling: c.scaling,
      a: { ...c.a.at, path: pathOf(c.a.object) },
      b: { ...c.b.at, path: pathOf(c.b.object) },
    })),
  };
}

/** The failure to report for `err`, or `undefined` when it is not the inputs' or options' fault. */
export function failureOf(err: unknown): TaskFailure | undefined {
  if (err instanceof AdapterFormatError) {
    return {
      kind: "adapter",
      message: err.message,
      file: err.file,
      ...(err.tensor !== undefined ? { tensor: err.tensor } : {}),
    };
  }
  if (err instanceof MergeInputError) {
    return {
      kind: "input",
      message: err.message,
      ...(err.module !== undefined ? { module: err.module } : {}),
      ...(err.client !== undefined ? { client: err.client } : {}),
    };
  }
  if (err instanceof MergeOptionsError) return { kind: "options", message: err.message };
  return undefined;
}

/** The error a reported failure stands for, as the leader would have met it merging locally. */
export function taskError(failure: TaskFailure, worker: string): Error {
  switch (failure.kind) {
    case "adapter":
      return new AdapterFormatError(failure.message, failure.file ?? "", failure.tensor);
    case "input":
      return new MergeInputError(failure.message, failure.module, failure.client);
    case "options":
      return new MergeOptionsError(failure.message);
    default:
      return new Error(`merge worker ${worker}: ${failure.message}`);
  }
}

/**
 * A merged module as bytes: a 4-byte little-endian header length, the
 * header (name, rank, report, factor lengths) as JSON, then `a` and `b` as
 * float32 little-endian.
 */
export function encodeModuleResult(result: ModuleMergeResult): Uint8Array {
  const { name, merged, report } = result;
  const header = encodeJson({ name, rank: merged.rank, report, a: merged.a.length, b: merged.b.length });
  const out = new Uint8Array(4 + header.length + 4 * (merged.a.length + merged.b.length));
  const view = new DataView(out.buffer);
  view.setUint32(0, header.length, true);
  out.set(header, 4);
  let at = 4 + header.length;
  for (const f of [merged.a, merged.b]) {
    for (let i = 0; i < f.length; i++, at += 4) view.setFloat32(at, f[i], true);
  }
  return out;
}

/** The inverse of {@link encodeModuleResult}; throws naming what is wrong with bytes that are not one. */
export function decodeModuleResult(bytes: Uint8Array): ModuleMergeResult {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = bytes.length >= 4 ? view.getUint32(0, true) : -1;
  if (headerLength < 0 || 4 + headerLength > bytes.length) {
    throw new Error(`a merge result of ${bytes.length} bytes has no complete header`);
  }
  const header = decodeJson<{
    name: string;
    rank: number;
    report: ModuleMergeResult["report"];
    a: number;
    b: number;
  }>(bytes.subarray(4, 4 + headerLength));
  const expected = 4 + headerLength + 4 * (header.a + header.b);
  if (bytes.length !== expected) {
    throw new Error(`merge result of ${header.name}: ${bytes.length} bytes, expected ${expected}`);
  }
  const factor = (from: number, length: number) => {
    const f = new Float32Array(length);
    for (let i = 0; i < length; i++) f[i] = view.getFloat32(from + 4 * i, true);
    return f;
  };
  const aAt = 4 + headerLength;
  return {
    name: header.name,
    merged: { rank: header.rank, a: factor(aAt, header.a), b: factor(aAt + 4 * header.a, header.b) },
    report: header.report,
  };
}

/** Results up to this size travel inside the outcome message (NATS's default max payload is 1 MiB). */
export const INLINE_RESULT_MAX = 768 * 1024;

/**
 * An outcome message: a 4-byte little-endian length, the outcome as JSON,
 * then the encoded result when it travels inline.
 */
export function encodeOutcome(outcome: TaskOutcome, inline?: Uint8Array): Uint8Array {
  const head = encodeJson(outcome);
  const out = new Uint8Array(4 + head.length + (inline?.length ?? 0));
  new DataView(out.buffer).setUint32(0, head.length, true);
  out.set(head, 4);
  if (inline !== undefined) out.set(inline, 4 + head.length);
  return out;
}

/** The inverse of {@link encodeOutcome}: the outcome and the inline result, if any. */
export function decodeOutcome(bytes: Uint8Array): { outcome: TaskOutcome; inline?: Uint8Array } {
  const length = bytes.length >= 4 ? new DataView(bytes.buffer, bytes.byteOffset).getUint32(0, true) : -1;
  if (length < 0 || 4 + length > bytes.length)
    throw new Error(`a merge outcome of ${bytes.length} bytes is cut short`);
  const outcome = decodeJson<TaskOutcome>(bytes.subarray(4, 4 + length));
  const rest = bytes.subarray(4 + length);
  return rest.length > 0 ? { outcome, inline: rest } : { outcome };
}
