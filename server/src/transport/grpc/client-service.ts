/**
 * `tributary.v1.ClientService` on grpc-js: every call is authenticated by the
 * client's bearer token and authorised for the federation and client id it
 * names; errors are mapped to statuses once, in `status.ts`.
 */
import { create } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import type * as grpc from "@grpc/grpc-js";
import {
  CHUNK_BYTES,
  type ClientService,
  contentHashProblem,
  FetchAdapterResponseSchema,
  GetUploadStatusResponseSchema,
  type GrpcServiceImplementation,
  HeartbeatResponseSchema,
  JoinResponseSchema,
  normalizeContentHash,
  SubmitUpdateResponseSchema,
  WatchRoundsResponseSchema,
} from "@tributary/protocol";
import type { Coordinator } from "../../coordinator/coordinator.ts";
import { InvalidRequestError, UploadDeferredError } from "../../coordinator/errors.ts";
import type { Log } from "../../core/log.ts";
import { isStorageFull } from "../../core/storage-faults.ts";
import {
  authenticateClient,
  authorizeClient,
  type ClientDirectory,
  type ClientIdentity,
  certificateClientId,
} from "./auth.ts";
import { clientSlots } from "./client-slots.ts";
import type { ConnectionTracker } from "./connections.ts";
import { federationToProto, roundToProto } from "./convert.ts";
import { toServiceError } from "./status.ts";
import { DEFAULT_UPLOAD_FAIRNESS, type UploadFairness, watchRate } from "./upload-fairness.ts";
import { MAX_ACTIVE_UPLOADS, uploadGate } from "./upload-gate.ts";
import { splitUpload } from "./upload-messages.ts";

/** Dependencies of the client service. */
export interface ClientServiceDeps {
  readonly coordinator: Coordinator;
  readonly directory: ClientDirectory;
  readonly connections: ConnectionTracker;
  readonly log: Log;
  /** Upload streams one client may have open at once (default {@link MAX_CONCURRENT_UPLOADS}). */
  readonly maxConcurrentUploads?: number;
  /** `WatchRounds` streams one client may have open at once (default {@link MAX_CONCURRENT_WATCHES}). */
  readonly maxConcurrentWatches?: number;
  /** Download streams one client may have open at once (default {@link MAX_CONCURRENT_DOWNLOADS}). */
  readonly maxConcurrentDownloads?: number;
  /**
   * Upload streams read at once, all clients together (default
   * {@link MAX_ACTIVE_UPLOADS}); later ones wait their turn unread, so the
   * coordinator's memory does not grow with the number of clients uploading.
   */
  readonly maxActiveUploads?: number;
  /** An upload stream that sends nothing for this long is ended (default {@link UPLOAD_IDLE_MS}). */
  readonly uploadIdleMs?: number;
  /** Fair turns between uploads (default {@link DEFAULT_UPLOAD_FAIRNESS}). */
  readonly uploadFairness?: UploadFairness;
}

/** Default {@link ClientServiceDeps.uploadIdleMs}: 60 s. */
export const UPLOAD_IDLE_MS = 60_000;

/** Per-client stream limits, as `tributary serve` takes them (each defaults as in {@link ClientServiceDeps}). */
export interface ClientStreamLimits {
  readonly uploads?: number;
  readonly downloads?: number;
  readonly watches?: number;
}

/** Default {@link ClientServiceDeps.maxConcurrentWatches}: a client needs one; a few cover reconnects racing dying streams. */
export const MAX_CONCURRENT_WATCHES = 4;

/** Default {@link ClientServiceDeps.maxConcurrentDownloads}. */
export const MAX_CONCURRENT_DOWNLOADS = 4;

/** Default {@link ClientServiceDeps.maxConcurrentUploads}: one update per round, plus a retry racing a dying stream. */
export const MAX_CONCURRENT_UPLOADS = 2;

type StreamingCall = grpc.ServerWritableStream<unknown, unknown>;

/**
 * Writes `msg` and resolves once grpc-js has handed it to HTTP/2 (which holds
 * it until the client's flow-control window lets it go), so a client that
 * stops reading holds at most one chunk of the coordinator's memory per
 * stream — not a writable buffer's worth.
 */
function writeFlushed<T>(call: grpc.ServerWritableStream<unknown, T>, msg: T): Promise<void> {
  if (call.cancelled) return Promise.reject(new Error("the download was cancelled"));
  return new Promise<void>((resolve, reject) => {
    // A client that goes away while a chunk waits for its window never frees it:
    // give up on the write then, so the stored file is closed.
    const onCancel = () => reject(new Error("the download was cancelled"));
    call.once("cancelled", onCancel);
    call.write(msg, (err?: Error | null) => {
      call.off("cancelled", onCancel);
      if (err) reject(err);
      else resolve();
    });
  });
}

/** A requested content hash, lower case (`InvalidRequestError` unless it is 64 hex digits). */
function contentHashOf(value: string): string {
  const hash = normalizeContentHash(value);
  if (hash === undefined) throw new InvalidRequestError("content_hash", contentHashProblem(value)!);
  return hash;
}

/** Builds the handlers. */
export function clientServiceHandlers(
  deps: ClientServiceDeps,
): GrpcServiceImplementation<typeof ClientService> {
  const { coordinator, directory, connections, log } = deps;
  const takeUpload = clientSlots(
    deps.maxConcurrentUploads ?? MAX_CONCURRENT_UPLOADS,
    "concurrent_uploads",
    "uploads",
  );
  const takeWatch = clientSlots(
    deps.maxConcurrentWatches ?? MAX_CONCURRENT_WATCHES,
    "concurrent_watches",
    "WatchRounds streams",
  );
  const takeDownload = clientSlots(
    deps.maxConcurrentDownloads ?? MAX_CONCURRENT_DOWNLOADS,
    "concurrent_downloads",
    "downloads",
  );
  const gate = uploadGate(deps.maxActiveUploads ?? MAX_ACTIVE_UPLOADS);
  const fairness = deps.uploadFairness ?? DEFAULT_UPLOAD_FAIRNESS;
  /** Uploads deferred for their rate whose turn is not given back yet. */
  let deferredNow = 0;
  const identify = (
    call: { metadata: grpc.Metadata } & Parameters<typeof certificateClientId>[0],
    federationId: string,
    clientId?: string,
  ): ClientIdentity => {
    const identity = authenticateClient(call.metadata, directory, certificateClientId(call));
    authorizeClient(identity, federationId, clientId);
    return identity;
  };
  const livenessTimeout = () => durationFromMs(connections.timeoutMs);
  const fail = (call: StreamingCall, err: unknown) => {
    call.emit("error", toServiceError(err));
  };

  return {
    join(call, callback) {
      (async () => {
        const req = call.request;
        const identity = identify(call, req.federationId);
        connections.touch(req.federationId, identity.clientId);
        const { federation, current, accepted, weightsBySamples } = await coordinator.join(
          req.federationId,
          identity.clientId,
          {
            baseModelId: req.baseModelId,
            modules: req.modules,
          },
        );
        return create(JoinResponseSchema, {
          clientId: identity.clientId,
          federation: federationToProto(federation),
          ...(current !== undefined ? { currentRound: roundToProto(current, accepted) } : {}),
          livenessTimeout: livenessTimeout(),
          weightsBySamples,
          waitingReason: coordinator.whyNoRound(req.federationId) ?? "",
        });
      })().then(
        (res) => callback(null, res),
        (err: unknown) => callback(toServiceError(err) as grpc.ServiceError),
      );
    },

    watchRounds(call) {
      const federationId = call.request.federationId;
      let identity: ClientIdentity;
      try {
        identity = identify(call, federationId);
      } catch (err) {
        fail(call as StreamingCall, err);
        return;
      }
      const clientId = identity.clientId;
      let releaseWatch: () => void;
      try {
        releaseWatch = takeWatch(clientId);
      } catch (err) {
        fail(call as StreamingCall, err);
        return;
      }
      const unsubscribe = coordinator.watch(federationId, ({ round, acceptedUpdates }) => {
        call.write(create(WatchRoundsResponseSchema, { round: roundToProto(round, acceptedUpdates) }));
      });
      // Closing the stream starts the client's liveness timeout; the tracker
      // reports it gone when that runs out.
      const release = connections.open(federationId, clientId);
      const end = () => {
        unsubscribe();
        release();
        releaseWatch();
      };
      call.on("cancelled", end);
      call.on("close", end);
      call.on("error", end);
      const current = coordinator.current(federationId);
      if (current !== undefined) {
        const accepted = coordinator.updates(federationId, current.number).length;
        call.write(create(WatchRoundsResponseSchema, { round: roundToProto(current, accepted) }));
      }
      coordinator
        .clientConnected(federationId, clientId)
        .catch((err: unknown) => fail(call as StreamingCall, err));
    },

    submitUpdate(call, callback) {
      let release = () => {};
      (async () => {
        const identity = authenticateClient(call.metadata, directory, certificateClientId(call));
        const releaseSlot = takeUpload(identity.clientId);
        release = releaseSlot;
        const { active, waiting, limit } = gate.state();
        if (active >= limit && waiting === 0) {
          log.info("uploads now wait for a turn", { clientId: identity.clientId, active, limit });
        }
        const releaseTurn = await gate.enter(
          (onCancel) =>
            call.once("cancelled", () =>
              onCancel(
                new Error(`the upload of ${identity.clientId} was cancelled while waiting for its turn`),
              ),
            ),
          {
            ms: fairness.maxWaitMs,
            error: () =>
              new UploadDeferredError(
                identity.clientId,
                "max_upload_wait",
                fairness.maxWaitMs / 1000,
                `it waited ${fairness.maxWaitMs / 1000} s for one of the ${gate.state().limit} upload turns`,
              ),
          },
        );
        // Uploads deferred for their rate and not yet gone count against the
        // waiting ones, so no more are deferred than there are uploads waiting.
        let yielding = false;
        const rate = watchRate(
          fairness,
          () => gate.state().waiting > deferredNow,
          (got) => {
            yielding = true;
            deferredNow++;
            return new UploadDeferredError(
              identity.clientId,
              "min_upload_rate",
              fairness.minBytesPerSec,
              `it sent ${got} bytes in the last ${fairness.windowMs / 1000} s while other uploads waited, below the minimum of ${fairness.minBytesPerSec} bytes/s`,
            );
          },
        );
        release = () => {
          rate.stop();
          if (yielding) deferredNow--;
          yielding = false;
          releaseTurn();
          releaseSlot();
        };
        const { header, chunks } = await splitUpload(
          call,
          identity.clientId,
          deps.uploadIdleMs ?? UPLOAD_IDLE_MS,
          rate,
        );
        authorizeClient(identity, header.federationId, header.clientId);
        connections.touch(header.federationId, identity.clientId);
        const outcome = await coordinator.submitUpdate(identity.clientId, header, chunks);
        return create(SubmitUpdateResponseSchema, {
          updateId: outcome.updateId,
          round: outcome.round,
          accepted: outcome.accepted,
          duplicate: outcome.duplicate,
          contentHash: outcome.sha256,
          size: BigInt(outcome.size),
        });
      })()
        .finally(() => release())
        .then(
          (res) => callback(null, res),
          (err: unknown) => {
            if (isStorageFull(err)) {
              log.error("storage full: update refused with RESOURCE_EXHAUSTED", { error: err });
            } else log.info("update refused", { error: err instanceof Error ? err.message : String(err) });
            callback(toServiceError(err) as grpc.ServiceError);
          },
        );
    },

    heartbeat(call, callback) {
      (async () => {
        const federationId = call.request.federationId;
        const identity = identify(call, federationId);
        connections.touch(federationId, identity.clientId);
        await coordinator.clientConnected(federationId, identity.clientId);
        const current = coordinator.current(federationId);
        const accepted = current === undefined ? 0 : coordinator.updates(federationId, current.number).length;
        return create(HeartbeatResponseSchema, {
          livenessTimeout: livenessTimeout(),
          ...(current !== undefined ? { currentRound: roundToProto(current, accepted) } : {}),
          waitingReason: coordinator.whyNoRound(federationId) ?? "",
          quorum: coordinator.federation(federationId).policy.quorum,
        });
      })().then(
        (res) => callback(null, res),
        (err: unknown) => callback(toServiceError(err) as grpc.ServiceError),
      );
    },

    getUploadStatus(call, callback) {
      (async () => {
        const req = call.request;
        const identity = identify(call, req.federationId);
        connections.touch(req.federationId, identity.clientId);
        const s = await coordinator.uploadStatus({
          federationId: req.federationId,
          round: req.round,
          clientId: identity.clientId,
          updateId: req.updateId,
        });
        return create(GetUploadStatusResponseSchema, {
          receivedBytes: BigInt(s.bytes),
          complete: s.state === "accepted",
        });
      })().then(
        (res) => callback(null, res),
        (err: unknown) => callback(toServiceError(err) as grpc.ServiceError),
      );
    },

    fetchAdapter(call) {
      let release = () => {};
      (async () => {
        const req = call.request;
        const identity = identify(call, req.federationId);
        connections.touch(req.federationId, identity.clientId);
        release = takeDownload(identity.clientId);
        call.once("cancelled", release);
        const rank = req.rank > 0 ? { rank: req.rank } : {};
        const sel =
          req.selector.case === "round"
            ? { round: req.selector.value, ...rank }
            : req.selector.case === "contentHash"
              ? { hash: contentHashOf(req.selector.value) }
              : rank;
        const { handle, round } = await coordinator.publishedAdapter(req.federationId, sel);
        await writeFlushed(
          call,
          create(FetchAdapterResponseSchema, {
            payload: {
              case: "header",
              value: {
                round,
                contentHash: handle.contentHash,
                size: BigInt(handle.size),
                adapterConfigJson: handle.configJson,
              },
            },
          }),
        );
        const reader = await handle.open();
        try {
          for (let pos = Number(req.offset); pos < handle.size && !call.cancelled; pos += CHUNK_BYTES) {
            const chunk = await reader.read(pos, Math.min(CHUNK_BYTES, handle.size - pos));
            await writeFlushed(
              call,
              create(FetchAdapterResponseSchema, { payload: { case: "chunk", value: chunk } }),
            );
          }
        } finally {
          await reader.close();
        }
        call.end();
      })()
        .finally(() => release())
        .catch((err: unknown) => fail(call as StreamingCall, err));
    },
  };
}
