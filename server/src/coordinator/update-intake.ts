/**
 * Receiving one update: admission checks on the header before any byte is
 * stored, chunks streamed to a durable upload (resumable), integrity and
 * content validation of the stored bytes tensor by tensor, and only then the
 * journaled acceptance. A rejected update is deleted and never reaches a
 * merge; nothing already accepted is touched.
 */

import type { Log } from "../core/log.ts";
import type { Federation, UpdateRecord } from "../core/model.ts";
import type { CoordinatorStore, UploadKey, UploadSink } from "../core/store.ts";
import { StoreIntegrityError, UpdateConflictError, UploadStoppedError } from "../core/store-errors.ts";
import { noopTelemetry, type Telemetry, type UpdateTrace } from "../core/telemetry.ts";
import { foldRound } from "./buffered-rounds.ts";
import { concatBytes } from "./concat-bytes.ts";
import { type ContentChecker, inlineContentChecker } from "./content-check-pool.ts";
import { type EarlyCheck, earlyCheck } from "./early-content-check.ts";
import { InvalidUpdateError, ResumeOffsetError, StaleRoundError } from "./errors.ts";
import type { RoundScheduler } from "./round-scheduler-types.ts";
import { type SubmitHeader, validateUpdate } from "./update-validator.ts";

export type { SubmitHeader } from "./update-validator.ts";

/** The acknowledgement of an accepted (durably stored) update. */
export interface SubmitOutcome {
  readonly updateId: string;
  readonly round: number;
  readonly accepted: boolean;
  /** The update was already accepted earlier; nothing new was stored. */
  readonly duplicate: boolean;
  /** Lower-case hex sha256 of the stored bytes. */
  readonly sha256: string;
  readonly size: number;
}

async function drain(chunks: AsyncIterable<Uint8Array>): Promise<void> {
  for await (const _ of chunks) {
    // An idempotent resend: its bytes are not needed.
  }
}

function ack(u: UpdateRecord, duplicate: boolean): SubmitOutcome {
  return {
    updateId: u.updateId,
    round: u.round,
    accepted: true,
    duplicate,
    sha256: u.sha256,
    size: u.size,
  };
}

/** What `receiveUpdate` needs. */
export interface ReceiveArgs {
  clientId: string;
  header: SubmitHeader;
  chunks: AsyncIterable<Uint8Array>;
  federation: Federation;
  scheduler: RoundScheduler;
  store: CoordinatorStore;
  now: () => number;
  log: Log;
  /** Traces the update and its steps, counts it (default: nothing). */
  telemetry?: Telemetry;
  /** Checks the stored content (default: on this thread). */
  checker?: ContentChecker;
}

/**
 * Receives, validates and accepts one update. Resolves only after the update
 * and its acceptance are durable.
 */
export async function receiveUpdate(args: ReceiveArgs): Promise<SubmitOutcome> {
  const traced = (args.telemetry ?? noopTelemetry).update({
    federationId: args.federation.id,
    round: args.header.round,
    clientId: args.clientId,
    updateId: args.header.updateId,
  });
  try {
    const outcome = await traced.run(() => receive(args, traced));
    traced.end(outcome.duplicate ? "duplicate" : "accepted");
    return outcome;
  } catch (err) {
    traced.fail(err);
    throw err;
  }
}

/**
 * The header as intake handles it: with buffered rounds, its `round` (the
 * one its client trained from) becomes the open round it is folded in, and
 * the updates it may duplicate are those of every round since the one it
 * names.
 */
function admitted(args: ReceiveArgs): {
  header: SubmitHeader;
  accepted: readonly UpdateRecord[];
  baseRound?: number;
} {
  const { header, federation, scheduler } = args;
  const buffered = federation.policy.buffered;
  if (buffered === undefined) return { header, accepted: scheduler.accepted(header.round) };
  const current = scheduler.current();
  const earlier: UpdateRecord[] = [];
  for (let n = Math.max(1, header.round); n <= (current?.number ?? 0); n++)
    earlier.push(...scheduler.accepted(n));
  // An update already accepted is acknowledged again, whichever round it was folded in.
  const same = earlier.find((u) => u.clientId === args.clientId && u.updateId === header.updateId);
  if (same !== undefined) return { header: { ...header, round: same.round }, accepted: earlier };
  const round = foldRound(federation, buffered, header.round, current);
  return { header: { ...header, round }, accepted: earlier, baseRound: header.round };
}

async function receive(args: ReceiveArgs, traced: UpdateTrace): Promise<SubmitOutcome> {
  const { clientId, federation, scheduler, store, log } = args;
  const { header, accepted, baseRound } = admitted(args);
  const decision = await traced.step("validate", () =>
    validateUpdate({
      federation,
      clientId,
      header,
      currentRound: scheduler.current(),
      accepted,
    }),
  );
  if (decision.kind === "duplicate") {
    await drain(args.chunks);
    return ack(decision.existing, true);
  }
  const key: UploadKey = {
    federationId: federation.id,
    round: header.round,
    clientId,
    updateId: header.updateId,
  };
  const expected = { size: header.totalSize, sha256: header.sha256 };
  /** The store stops the uploads of a round that closes: the client is told the round is stale. */
  const staleIfClosed = (err: unknown): unknown =>
    err instanceof UploadStoppedError && err.reason === "round-closed"
      ? new StaleRoundError(federation.id, header.round, scheduler.current())
      : err;
  let sink: UploadSink = await store.beginUpload(key, expected);
  if (header.resumeOffset !== sink.offset) {
    if (header.resumeOffset === 0) {
      await sink.abort(); // the client starts over
      sink = await store.beginUpload(key, expected);
    } else {
      const durable = sink.offset;
      await sink.close();
      throw new ResumeOffsetError(clientId, header.updateId, header.resumeOffset, durable);
    }
  }
  const headerLimit = maxHeaderBytes(federation);
  const checker = args.checker ?? inlineContentChecker;
  // The content is checked as it arrives when the store writes a local file from byte 0.
  const early: EarlyCheck | undefined =
    sink.offset === 0 && sink.path !== undefined
      ? earlyCheck({
          checker,
          federation,
          clientId,
          configJson: header.configJson,
          path: sink.path,
          size: header.totalSize,
        })
      : undefined;
  let prefix: Uint8Array = new Uint8Array(0);
  try {
    await traced.step("upload", async () => {
      let at = sink.offset;
      for await (const chunk of args.chunks) {
        traced.received(chunk.byteLength);
        if (at < 8) {
          // The header length comes first: a header larger than the schema can need is
          // refused before the rest is received or anything is parsed.
          prefix = concatBytes(prefix, chunk.subarray(0, 8 - at));
          if (prefix.length === 8) checkHeaderLength(clientId, prefix, headerLimit);
        }
        at += chunk.byteLength;
        await sink.write(chunk);
        await early?.written(chunk, at);
      }
    });
  } catch (err) {
    early?.cancel("the upload stopped");
    if (err instanceof InvalidUpdateError) await sink.abort();
    else if (!(err instanceof UpdateConflictError || err instanceof UploadStoppedError)) await sink.close(); // keep what arrived: the client may resume
    throw staleIfClosed(err);
  }
  let committed: Awaited<ReturnType<UploadSink["commit"]>>;
  try {
    committed = await traced.step("store", () => sink.commit());
  } catch (err) {
    early?.cancel("the upload was not stored");
    if (err instanceof UpdateConflictError || err instanceof UploadStoppedError) throw staleIfClosed(err);
    if (err instanceof StoreIntegrityError) {
      // A size or sha256 mismatch already deleted the bytes and released the
      // sink (closing it again would throw); an incomplete upload keeps them.
      if (err.reason === "incomplete") await sink.close();
      const field = err.reason === "sha256-mismatch" ? "content_hash" : "total_size";
      throw new InvalidUpdateError(clientId, err.message, { field, cause: err });
    }
    throw err;
  }
  try {
    const summaries = await traced.step("validate_content", async () => {
      const checked = early?.outcome();
      if (checked !== undefined) return await checked;
      const reader = await store.openUpdate(federation.id, header.round, clientId);
      try {
        return await checker.check({
          federation,
          clientId,
          configJson: header.configJson,
          reader,
        });
      } finally {
        await reader.close();
      }
    });
    const record: UpdateRecord = {
      federationId: federation.id,
      round: header.round,
      clientId,
      updateId: header.updateId,
      samples: header.samples,
      metrics: header.metrics,
      sha256: committed.sha256,
      size: committed.size,
      receivedAt: args.now(),
      configJson: header.configJson,
      modules: summaries,
      ...(baseRound !== undefined ? { baseRound } : {}),
    };
    const admitted = await traced.step("accept", () => scheduler.onUpdateAccepted(record));
    log.info("update accepted", {
      federation: federation.id,
      round: header.round,
      client: clientId,
      update: header.updateId,
      bytes: committed.size,
    });
    return admitted.kind === "duplicate" ? ack(admitted.existing, true) : ack(record, false);
  } catch (err) {
    // Rejected content, or the round closed meanwhile: the bytes never count.
    await store.discardUpload(key).catch(() => false);
    throw err;
  }
}

/**
 * The largest safetensors header an update of `federation` can need: a few
 * hundred bytes per tensor (two per schema module) plus a small `__metadata__`.
 */
export function maxHeaderBytes(federation: Federation): number {
  return 16 * 1024 + 2 * 1024 * federation.schema.modules.length;
}

/** Refuses a safetensors header length above `limit` (the 8-byte little-endian prefix). */
function checkHeaderLength(clientId: string, prefix: Uint8Array, limit: number): void {
  const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(limit)) {
    throw new InvalidUpdateError(
      clientId,
      `the safetensors header is ${n} bytes; an adapter of this federation's schema needs at most ${limit}`,
      { field: "header_length" },
    );
  }
}
