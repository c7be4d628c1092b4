/**
 * Intake's content check while an update arrives. Once the bytes written
 * hold the safetensors header, the check begins on the file being written
 * (`ContentChecker.begin`) and follows each write, so it ends moments after
 * the last byte. An update resumed mid-file, one whose store keeps no local
 * file, or one whose header does not parse here is checked once stored
 * instead, which names any fault exactly as before.
 */
import { parseSafetensorsLayout, safetensorsHeaderLength } from "@tributary/protocol";
import type { Federation, UpdateModuleSummary } from "../core/model.ts";
import { concatBytes } from "./concat-bytes.ts";
import type { ContentChecker, GrowingCheck } from "./content-check-pool.ts";

/** What an early check needs. */
export interface EarlyCheckArgs {
  readonly checker: ContentChecker;
  readonly federation: Federation;
  readonly clientId: string;
  readonly configJson: string;
  /** The file the upload is written to, from its first byte. */
  readonly path: string;
  /** The declared size of the update. */
  readonly size: number;
}

/** A content check that may begin while the update is written. */
export interface EarlyCheck {
  /** `chunk` was written, ending at byte `at` of the file. */
  written(chunk: Uint8Array, at: number): Promise<void>;
  /** The check's outcome, or `undefined` when it never began (check the stored update instead). */
  outcome(): Promise<Record<string, UpdateModuleSummary>> | undefined;
  /** The upload stopped before its commit: the check is abandoned. */
  cancel(reason: string): void;
}

/** How many more bytes are written before a check is told (the last byte is always told at once). */
export const ADVANCE_STEP = 4 * 1024 * 1024;

/**
 * An early check of the upload written to `args.path` from byte 0.
 *
 * @example
 * const early = earlyCheck({ checker, federation, clientId, configJson, path: sink.path, size });
 * for await (const chunk of chunks) { await sink.write(chunk); await early.written(chunk, at += chunk.length); }
 * const modules = await (early.outcome() ?? checkStored());
 */
export function earlyCheck(args: EarlyCheckArgs): EarlyCheck {
  /** The file's first bytes, kept until they hold the whole header. */
  let head: Uint8Array = new Uint8Array(0);
  let want = 8;
  let check: GrowingCheck | undefined;
  let off = false;
  /** Bytes the check has been told are written. */
  let told = 0;

  /** Gathers the header from `chunk`, the bytes that follow those gathered; true once it is whole. */
  const gather = (chunk: Uint8Array): boolean => {
    let used = 0; // `written` saw the chunk start where the gathered bytes end
    while (head.length < want && used < chunk.length) {
      const take = chunk.subarray(used, used + (want - head.length));
      head = concatBytes(head, take);
      used += take.length;
      if (want === 8 && head.length === 8) want = 8 + safetensorsHeaderLength(head, args.size, args.path);
    }
    return want > 8 && head.length >= want;
  };

  const begin = async (at: number) => {
    try {
      const layout = parseSafetensorsLayout(head.subarray(8, want), args.size, args.path);
      told = at;
      check = await args.checker.begin({
        federation: args.federation,
        clientId: args.clientId,
        configJson: args.configJson,
        path: args.path,
        tensors: layout.tensors,
        available: at,
      });
    } catch {
      off = true; // the check of the stored update reports the header's fault
    } finally {
      head = new Uint8Array(0);
    }
  };

  return {
    async written(chunk, at) {
      if (check !== undefined) {
        // Told in steps: each tells a thread, and a module or two per step is all a check needs.
        if (at - told >= ADVANCE_STEP || at === args.size) {
          told = at;
          check.advance(at);
        }
        return;
      }
      if (off) return;
      if (at - chunk.length !== head.length) {
        off = true; // not contiguous from byte 0
        return;
      }
      let whole: boolean;
      try {
        whole = gather(chunk);
      } catch {
        off = true; // the check of the stored update reports the header's fault
        return;
      }
      if (whole) await begin(at);
    },
    outcome: () => check?.result,
    cancel(reason) {
      off = true;
      check?.cancel(reason);
    },
  };
}
