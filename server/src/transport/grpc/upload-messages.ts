/**
 * An upload stream's messages as intake takes them: the first is the header,
 * the rest are chunk bytes. Each wait for a message is bounded by the idle
 * limit and by the fairness watch, and holds nothing once it settles, so a
 * chunk is garbage as soon as intake has written it. (Racing every wait
 * against one long-lived "too slow" promise kept each settled race, and so
 * every chunk of the upload, alive until the upload ended: 27 MB per
 * update, 873 MB with 32 clients uploading.)
 */
import { normalizeContentHash, type SubmitUpdateRequest, updateHeaderProblem } from "@tributary/protocol";
import { InvalidUpdateError, QuotaExceededError } from "../../coordinator/errors.ts";
import type { SubmitHeader } from "../../coordinator/update-intake.ts";
import type { RateWatch } from "./upload-fairness.ts";

/** An upload's header and its chunks, in arrival order. */
export interface SplitUpload {
  readonly header: SubmitHeader;
  readonly chunks: AsyncIterable<Uint8Array>;
}

/**
 * The next message of `messages`, or the idle error after `idleMs` without
 * one, or `rate`'s error once the upload is found too slow. Every timer and
 * listener is gone when it settles.
 */
function nextWithin<T>(
  messages: AsyncIterator<T>,
  clientId: string,
  idleMs: number,
  rate: RateWatch | undefined,
): Promise<IteratorResult<T>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () =>
        reject(
          new QuotaExceededError(
            clientId,
            "upload_idle_seconds",
            idleMs / 1000,
            `the upload sent nothing for ${idleMs / 1000} s`,
          ),
        ),
      idleMs,
    );
    const stopListening = rate?.whenSlow(reject);
    const done = () => {
      clearTimeout(timer);
      stopListening?.();
    };
    messages.next().then(
      (result) => {
        done();
        resolve(result);
      },
      (err: unknown) => {
        done();
        reject(err);
      },
    );
  });
}

/**
 * Reads the header of the upload `call` of `clientId` and returns it with
 * the chunks that follow. An upload that sends nothing for `idleMs` ends with
 * `QuotaExceededError` (what arrived stays resumable); one `rate` finds too
 * slow ends with its error.
 *
 * @throws {InvalidUpdateError} when the first message is not a valid header,
 *   or (while iterating the chunks) a later message is not a chunk.
 *
 * @example
 * const { header, chunks } = await splitUpload(call, "node-1", 60_000);
 * for await (const bytes of chunks) await sink.write(bytes);
 */
export async function splitUpload(
  call: AsyncIterable<SubmitUpdateRequest>,
  clientId: string,
  idleMs: number,
  rate?: RateWatch,
): Promise<SplitUpload> {
  const messages = call[Symbol.asyncIterator]();
  const next = () => nextWithin(messages, clientId, idleMs, rate);
  const first = await next();
  if (first.done === true || first.value.payload.case !== "header") {
    throw new InvalidUpdateError(clientId, "the first SubmitUpdate message must be the header", {
      field: "header",
    });
  }
  const h = first.value.payload.value;
  // The limits first: nothing else reads, stores or echoes a field that breaks one.
  const bad = updateHeaderProblem(h);
  if (bad !== undefined) throw new InvalidUpdateError(clientId, bad.problem, { field: bad.field });
  const header: SubmitHeader = {
    federationId: h.federationId,
    round: h.round,
    clientId: h.clientId || clientId,
    updateId: h.updateId,
    samples: Number(h.sampleCount),
    metrics: { ...h.metrics },
    sha256: normalizeContentHash(h.contentHash) ?? h.contentHash,
    totalSize: Number(h.totalSize),
    configJson: h.adapterConfigJson,
    resumeOffset: Number(h.resumeOffset),
  };
  const chunks = {
    async *[Symbol.asyncIterator]() {
      for (;;) {
        const message = await next();
        if (message.done === true) return;
        if (message.value.payload.case !== "chunk") {
          throw new InvalidUpdateError(clientId, "only chunks may follow the header", { field: "chunk" });
        }
        rate?.received(message.value.payload.value.byteLength);
        yield message.value.payload.value;
      }
    },
  };
  return { header, chunks };
}
