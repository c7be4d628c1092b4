/**
 * Downloading a merged adapter over `FetchAdapter`: the header alone (to learn
 * which round and content hash "latest" means), or the whole adapter,
 * resuming from the bytes already received when the connection drops, and
 * verified against its content hash before it is returned.
 */
import { create } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import {
  type AdapterHeader,
  FetchAdapterRequestSchema,
  type FetchAdapterResponse,
} from "@tributary/protocol";
import { verifyAdapter } from "./adapter-files.ts";
import type { Channel } from "./channel.ts";
import { TributaryError } from "./errors.ts";
import { type ResolvedRetry, withRetry } from "./retry.ts";

/** Which adapter: a round's, one by content hash, or the latest published (neither); and at which rank. */
export interface AdapterSelector {
  readonly round?: number;
  readonly contentHash?: string;
  /** The rank variant of this rank (`FetchAdapterRequest.rank`); absent or 0: the merged adapter. */
  readonly rank?: number;
}

/** A merged adapter with where it came from. */
export interface FetchedAdapter {
  readonly round: number;
  /** Hex sha256 of `safetensors` (verified). */
  readonly contentHash: string;
  readonly configJson: string;
  readonly safetensors: Uint8Array;
}

/** The header of an adapter. */
export interface AdapterInfo {
  readonly round: number;
  readonly contentHash: string;
  readonly size: number;
}

function request(federationId: string, sel: AdapterSelector, offset = 0) {
  return create(FetchAdapterRequestSchema, {
    federationId,
    offset: BigInt(offset),
    rank: sel.contentHash === undefined ? (sel.rank ?? 0) : 0,
    selector:
      sel.contentHash !== undefined
        ? { case: "contentHash", value: sel.contentHash }
        : sel.round !== undefined
          ? { case: "round", value: sel.round }
          : { case: undefined },
  });
}

function info(h: AdapterHeader): AdapterInfo {
  return { round: h.round, contentHash: h.contentHash, size: Number(h.size) };
}

/** Reads only the header of the selected adapter, then cancels the download. */
export function fetchAdapterInfo(
  channel: Channel,
  retry: ResolvedRetry,
  federationId: string,
  sel: AdapterSelector,
  signal?: AbortSignal,
): Promise<AdapterInfo> {
  return withRetry(
    "fetch adapter header",
    retry,
    () =>
      new Promise<AdapterInfo>((resolve, reject) => {
        let got: AdapterInfo | undefined;
        const stream = channel.client.fetchAdapter(
          request(federationId, sel),
          channel.metadata(),
        ) as grpc.ClientReadableStream<FetchAdapterResponse>;
        stream.on("data", (msg: FetchAdapterResponse) => {
          if (got !== undefined || msg.payload.case !== "header") return;
          got = info(msg.payload.value);
          resolve(got);
          stream.cancel();
        });
        stream.on("error", (err) => {
          if (got === undefined) reject(err);
        });
        stream.on("end", () => {
          if (got === undefined)
            reject(new TributaryError("INTERNAL", "FetchAdapter ended without a header"));
        });
      }),
    signal,
  );
}

/** Downloads the selected adapter (resuming after transient failures) and verifies its sha256. */
export async function downloadAdapter(
  channel: Channel,
  retry: ResolvedRetry,
  federationId: string,
  sel: AdapterSelector,
  signal?: AbortSignal,
  onProgress?: (received: number, total: number) => void,
): Promise<FetchedAdapter> {
  let head: (AdapterInfo & { configJson: string }) | undefined;
  let buffer = new Uint8Array(0);
  let received = 0;
  await withRetry(
    `fetch adapter ${sel.round !== undefined ? `of round ${sel.round}` : (sel.contentHash ?? "latest")}`,
    retry,
    () =>
      new Promise<void>((resolve, reject) => {
        // After the first header, resume the same content by hash from what arrived.
        const req =
          head === undefined
            ? request(federationId, sel)
            : request(federationId, { contentHash: head.contentHash }, received);
        const stream = channel.client.fetchAdapter(
          req,
          channel.metadata(),
        ) as grpc.ClientReadableStream<FetchAdapterResponse>;
        const onAbort = () => stream.cancel();
        signal?.addEventListener("abort", onAbort, { once: true });
        const done = (err?: unknown) => {
          signal?.removeEventListener("abort", onAbort);
          if (err === undefined) resolve();
          else reject(err);
        };
        stream.on("data", (msg: FetchAdapterResponse) => {
          if (msg.payload.case === "header") {
            const h = { ...info(msg.payload.value), configJson: msg.payload.value.adapterConfigJson };
            if (head === undefined) {
              head = h;
              buffer = new Uint8Array(h.size);
            } else if (h.contentHash !== head.contentHash) {
              stream.cancel();
              done(new TributaryError("INTERNAL", `resumed download switched to adapter ${h.contentHash}`));
            }
          } else if (msg.payload.case === "chunk" && head !== undefined) {
            const chunk = msg.payload.value;
            if (received + chunk.byteLength > buffer.byteLength) {
              stream.cancel();
              done(
                new TributaryError(
                  "INTERNAL",
                  `adapter ${head.contentHash} is longer than its ${head.size} bytes`,
                ),
              );
              return;
            }
            buffer.set(chunk, received);
            received += chunk.byteLength;
            onProgress?.(received, head.size);
          }
        });
        stream.on("error", (err) => done(err));
        stream.on("end", () => done());
      }),
    signal,
  );
  if (head === undefined) throw new TributaryError("INTERNAL", "FetchAdapter ended without a header");
  const what = `adapter of round ${head.round} over gRPC`;
  if (received !== head.size) {
    throw new TributaryError("INTERNAL", `${what}: received ${received} of ${head.size} bytes`);
  }
  verifyAdapter(buffer, head.contentHash, what);
  return {
    round: head.round,
    contentHash: head.contentHash,
    configJson: head.configJson,
    safetensors: buffer,
  };
}
