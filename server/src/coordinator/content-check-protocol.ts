/**
 * Messages between intake and its content-check threads
 * (`content-check-pool.ts`): a staged update's file and header go in, each
 * module's summary — or the reason it was refused — comes out.
 */
import type { Federation, UpdateModuleSummary } from "../core/model.ts";
import { InvalidUpdateError } from "./errors.ts";

/** Where one tensor lies in the staged file. */
export interface StagedTensor {
  readonly dtype: string;
  readonly shape: readonly number[];
  readonly offset: number;
  readonly byteLength: number;
}

/** One update to check. */
export interface ContentCheckRequest {
  readonly kind: "check";
  readonly id: number;
  readonly federation: Federation;
  readonly clientId: string;
  readonly configJson: string;
  /** The staged (or cached) file of the update. */
  readonly path: string;
  /**
   * A descriptor of `path` that the caller opened and closes after the reply
   * (a file still being written, which its store may rename meanwhile);
   * absent, the thread opens `path` itself.
   */
  readonly fd?: number;
  /**
   * For a file still being written: how many of its bytes are written now
   * (more follow as `advance` messages). Absent: the file is complete.
   */
  readonly available?: number;
  readonly tensors: ReadonlyMap<string, StagedTensor>;
}

/** More of a growing file's bytes are written, or its upload stopped and its check is abandoned. */
export type ContentCheckUpdate =
  | { readonly kind: "advance"; readonly id: number; readonly available: number }
  | { readonly kind: "cancel"; readonly id: number; readonly reason: string };

/** What intake sends a content-check thread. */
export type ContentCheckMessage = ContentCheckRequest | ContentCheckUpdate;

/** Why an update was refused, as plain data. */
export interface RefusalData {
  readonly clientId: string;
  readonly message: string;
  readonly module?: string;
  readonly tensor?: string;
  readonly field?: string;
}

/** A thread's answer. */
export type ContentCheckReply =
  | { readonly id: number; readonly ok: true; readonly modules: Record<string, UpdateModuleSummary> }
  | { readonly id: number; readonly ok: false; readonly refusal: RefusalData }
  | {
      readonly id: number;
      readonly ok: false;
      readonly failure: { readonly name: string; readonly message: string };
    };

/** `err` as plain data when it is a refusal. */
export function refusalOf(err: unknown): RefusalData | undefined {
  if (!(err instanceof InvalidUpdateError)) return undefined;
  const prefix = `update from client "${err.clientId}": `;
  return {
    clientId: err.clientId,
    message: err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message,
    ...(err.module !== undefined ? { module: err.module } : {}),
    ...(err.tensor !== undefined ? { tensor: err.tensor } : {}),
    ...(err.field !== undefined ? { field: err.field } : {}),
  };
}

/** The refusal as the error intake answers with. */
export function refusalError(r: RefusalData): InvalidUpdateError {
  return new InvalidUpdateError(r.clientId, r.message, {
    ...(r.module !== undefined ? { module: r.module } : {}),
    ...(r.tensor !== undefined ? { tensor: r.tensor } : {}),
    ...(r.field !== undefined ? { field: r.field } : {}),
  });
}
