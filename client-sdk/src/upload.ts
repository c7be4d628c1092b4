/**
 * Submitting one update: the header, then the safetensors bytes in
 * `CHUNK_BYTES` chunks written with backpressure; transient failures are
 * retried, and every retry first asks the coordinator how many bytes it holds
 * (`GetUploadStatus`) and resumes from there under the same update id, so a
 * dropped connection costs only the bytes in flight.
 */
import { createHash } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import {
  CHUNK_BYTES,
  GetUploadStatusRequestSchema,
  type SubmitUpdateRequest,
  SubmitUpdateRequestSchema,
  type SubmitUpdateResponse,
  updateHeaderProblem,
} from "@tributary/protocol";
import type { AdapterFiles } from "./adapter-files.ts";
import { type Channel, unary } from "./channel.ts";
import { InvalidUpdateError, isServiceError, isTransient } from "./errors.ts";
import type { LocalDpOptions, LocalDpReport } from "./local-dp.ts";
import { type ResolvedRetry, withRetry } from "./retry.ts";

/** How far an upload got, for {@link SubmitOptions.onProgress}. */
export interface UploadProgress {
  /** Bytes the coordinator holds or that were handed to the connection (a resumed try starts at its offset). */
  readonly sent: number;
  /** Size of the safetensors file. */
  readonly total: number;
  /** The try this belongs to (1, then 2, … after a retry). */
  readonly attempt: number;
}

/** Options of `TributaryClient.submit`. */
export interface SubmitOptions {
  /**
   * Training samples behind the update (the FedAvg weight). Required when
   * the federation weights by sample counts; otherwise omitted means 0.
   */
  readonly samples?: number;
  /** Training metrics to report, e.g. `{ loss: 0.42 }`. */
  readonly metrics?: Readonly<Record<string, number>>;
  /**
   * Idempotency key (`@tributary/protocol`'s `ID_RULES.update_id`: 1–128
   * of `A-Z a-z 0-9 . _ -`, not `.` or `..`). Default: derived from
   * the round and the adapter's content, so a retried or re-run submit of the
   * same adapter is recognised as the same update.
   */
  readonly updateId?: string;
  /** Called as bytes go out. */
  readonly onProgress?: (progress: UploadProgress) => void;
  /**
   * Local differential privacy: clip the update to `clipNorm` and add
   * Gaussian noise (`noiseMultiplier · clipNorm`) before it leaves the node
   * (`local-dp.ts`). Each call draws fresh noise, so a repeated submit is a
   * new update.
   */
  readonly localDp?: LocalDpOptions;
  readonly signal?: AbortSignal;
}

/** The coordinator's acknowledgement: the update is durably stored and will be merged. */
export interface SubmitResult {
  readonly updateId: string;
  readonly round: number;
  /** The coordinator already had this update; nothing new was stored. */
  readonly duplicate: boolean;
  /** Hex sha256 of the stored bytes, as the coordinator computed it. */
  readonly sha256: string;
  readonly size: number;
  /** Tries it took (1 = no retry). */
  readonly attempts: number;
  /** Offset the last try resumed from, when it did not start at 0. */
  readonly resumedFrom?: number;
  /** What local DP did, when `localDp` was given. */
  readonly localDp?: LocalDpReport;
}

/** What {@link uploadUpdate} needs besides the channel. */
export interface UploadArgs {
  readonly federationId: string;
  readonly clientId: string;
  readonly round: number;
  readonly adapter: AdapterFiles;
  readonly options: SubmitOptions;
  /** Chunk size (default `CHUNK_BYTES`). */
  readonly chunkBytes?: number;
}

/** The default update id: `r<round>-` + 40 hex digits of sha256(round, content hash, config). */
export function defaultUpdateId(round: number, sha256: string, configJson: string): string {
  const digest = createHash("sha256").update(`${round}\0${sha256}\0${configJson}`).digest("hex");
  return `r${round}-${digest.slice(0, 40)}`;
}

/**
 * Uploads an update, retrying and resuming as the module comment says.
 *
 * @throws {TributaryError} subclasses for permanent refusals, `UnavailableError` when retries run out.
 */
export async function uploadUpdate(
  channel: Channel,
  retry: ResolvedRetry,
  args: UploadArgs,
): Promise<SubmitResult> {
  const { federationId, clientId, round, adapter, options } = args;
  const bytes = adapter.safetensors;
  const sha = createHash("sha256").update(bytes).digest();
  const updateId = options.updateId ?? defaultUpdateId(round, sha.toString("hex"), adapter.configJson);
  const bad = updateHeaderProblem({
    federationId,
    clientId,
    updateId,
    contentHash: sha.toString("hex"),
    adapterConfigJson: adapter.configJson,
    metrics: options.metrics ?? {},
  });
  if (bad !== undefined) throw new InvalidUpdateError("INVALID_ARGUMENT", bad.problem);
  let attempts = 0;
  let resumedFrom: number | undefined;
  const ack = await withRetry(
    `submit round ${round}`,
    retry,
    async (attempt) => {
      attempts = attempt;
      const st = await uploadStatus(channel, { federationId, round, updateId });
      const held = Number(st.receivedBytes);
      // A complete upload is acknowledged again by resending its header alone.
      const offset = st.complete ? bytes.byteLength : held <= bytes.byteLength ? held : 0;
      resumedFrom = offset > 0 && !st.complete ? offset : undefined;
      const header = create(SubmitUpdateRequestSchema, {
        payload: {
          case: "header",
          value: {
            federationId,
            round,
            clientId,
            updateId,
            sampleCount: BigInt(Math.max(0, Math.round(options.samples ?? 0))),
            metrics: { ...options.metrics },
            contentHash: sha.toString("hex"),
            totalSize: BigInt(bytes.byteLength),
            adapterConfigJson: adapter.configJson,
            resumeOffset: BigInt(st.complete ? 0 : offset),
          },
        },
      });
      return sendUpload(channel, header, bytes, offset, {
        chunkBytes: args.chunkBytes ?? CHUNK_BYTES,
        attempt,
        ...(options.onProgress !== undefined ? { onProgress: options.onProgress } : {}),
        ...(options.signal !== undefined ? { signal: options.signal } : {}),
      });
    },
    options.signal,
  );
  return {
    updateId: ack.updateId,
    round: ack.round,
    duplicate: ack.duplicate,
    sha256: ack.contentHash,
    size: Number(ack.size),
    attempts,
    ...(resumedFrom !== undefined ? { resumedFrom } : {}),
  };
}

/**
 * What the coordinator holds of an upload. A refusal here (e.g.
 * `ALREADY_EXISTS` when the round already has another update from this client)
 * counts as "nothing held": `SubmitUpdate` then gives the authoritative answer
 * (a stale round is `FAILED_PRECONDITION` there). Transient failures propagate,
 * to be retried.
 */
async function uploadStatus(
  channel: Channel,
  key: { federationId: string; round: number; updateId: string },
): Promise<{ receivedBytes: bigint; complete: boolean }> {
  try {
    return await unary(channel, "getUploadStatus", create(GetUploadStatusRequestSchema, key));
  } catch (err) {
    if (isTransient(err) || !isServiceError(err)) throw err;
    return { receivedBytes: 0n, complete: false };
  }
}

/** One `SubmitUpdate` call: the header, then `bytes` from `offset`, waiting for `drain` when the stream is full. */
function sendUpload(
  channel: Channel,
  header: SubmitUpdateRequest,
  bytes: Uint8Array,
  offset: number,
  opts: {
    chunkBytes: number;
    attempt: number;
    onProgress?: (p: UploadProgress) => void;
    signal?: AbortSignal;
  },
): Promise<SubmitUpdateResponse> {
  return new Promise((resolve, reject) => {
    let finished = false;
    let wake: () => void = () => {};
    const stream: grpc.ClientWritableStream<SubmitUpdateRequest> = channel.client.submitUpdate(
      channel.metadata(),
      (err, res) => {
        finished = true;
        opts.signal?.removeEventListener("abort", onAbort);
        wake();
        if (opts.signal?.aborted) reject(opts.signal.reason);
        else if (err !== null) reject(err);
        else resolve(res!);
      },
    );
    const onAbort = () => stream.cancel();
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    const drained = () =>
      new Promise<void>((done) => {
        const go = () => {
          stream.off("drain", go);
          done();
        };
        wake = go;
        stream.once("drain", go);
      });
    const pump = async () => {
      const total = bytes.byteLength;
      opts.onProgress?.({ sent: offset, total, attempt: opts.attempt });
      if (!stream.write(header)) await drained();
      for (let pos = offset; pos < total && !finished; pos += opts.chunkBytes) {
        const end = Math.min(total, pos + opts.chunkBytes);
        const chunk = create(SubmitUpdateRequestSchema, {
          payload: { case: "chunk", value: bytes.subarray(pos, end) },
        });
        const more = stream.write(chunk);
        opts.onProgress?.({ sent: end, total, attempt: opts.attempt });
        if (!more && !finished) await drained();
      }
      if (!finished) stream.end();
    };
    pump().catch((err: unknown) => {
      stream.cancel();
      reject(err);
    });
  });
}
