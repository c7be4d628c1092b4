/**
 * The content check of one staged update file, read through a descriptor:
 * what a content-check thread runs, and the calling thread when there are
 * none. A file still being written is read as it grows: each tensor's read
 * waits until its bytes are written.
 */
import type { UpdateModuleSummary } from "../core/model.ts";
import { readAtSync } from "../peft/file-read.ts";
import type { ContentCheckRequest } from "./content-check-protocol.ts";
import type { GrowingFile } from "./growing-file.ts";
import { validateUpdateStream } from "./update-stream-validator.ts";

/** The request's fields a check reads. */
export type StagedCheck = Pick<
  ContentCheckRequest,
  "federation" | "clientId" | "configJson" | "path" | "tensors"
>;

/**
 * Checks the update `req` describes, reading its tensors from `fd`; with
 * `growing`, each read first waits for its bytes. Resolves with each
 * module's summary; rejects with `InvalidUpdateError` for refused content.
 *
 * @example
 * const modules = await checkStagedFile(req, openSync(req.path, "r"));
 */
export async function checkStagedFile(
  req: StagedCheck,
  fd: number,
  growing?: GrowingFile,
): Promise<Record<string, UpdateModuleSummary>> {
  // Two buffers, taken in turn, grown to the largest tensor: the check holds
  // one module (its A and B) at a time, so each read may reuse the buffer of
  // the module before, instead of allocating every tensor afresh (whose
  // garbage made the check threads collect all through the uploads).
  const spare = [new Uint8Array(0), new Uint8Array(0)];
  let turn = 0;
  const modules = await validateUpdateStream({
    federation: req.federation,
    clientId: req.clientId,
    configJson: req.configJson,
    tensors: req.tensors,
    readTensor: async (name) => {
      const t = req.tensors.get(name);
      if (t === undefined) throw new RangeError(`${req.path}: no tensor "${name}"`);
      const slot = turn++ % 2; // taken before waiting: a module's two reads are asked for together
      await growing?.until(t.offset + t.byteLength);
      if (spare[slot].byteLength < t.byteLength) spare[slot] = new Uint8Array(t.byteLength);
      const bytes = spare[slot].subarray(0, t.byteLength);
      if (readAtSync(fd, t.offset, bytes) !== t.byteLength) {
        throw new Error(`${req.path}: tensor "${name}" is cut short (the file shrank while open)`);
      }
      return bytes;
    },
  });
  return Object.fromEntries(modules);
}
