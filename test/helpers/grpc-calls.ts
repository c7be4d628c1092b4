/**
 * Promise wrappers over the grpc-js clients for the integration tests (the
 * client SDK has its own, richer ones).
 */
import { createHash } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import {
  CHUNK_BYTES,
  ClientService,
  type FetchAdapterRequest,
  type GrpcClient,
  makeClient,
  OperatorService,
  SubmitUpdateRequestSchema,
  type SubmitUpdateResponse,
} from "@tributary/protocol";

/** Metadata carrying a bearer token. */
export function bearer(token: string): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set("authorization", `Bearer ${token}`);
  return md;
}

/** Clients for both services at `address` (insecure). */
export function clientsFor(address: string): {
  client: GrpcClient<typeof ClientService>;
  operator: GrpcClient<typeof OperatorService>;
  close(): void;
} {
  const client = makeClient(ClientService, address, grpc.credentials.createInsecure());
  const operator = makeClient(OperatorService, address, grpc.credentials.createInsecure());
  return {
    client,
    operator,
    close() {
      client.close();
      operator.close();
    },
  };
}

type UnaryMethod<Req, Res> = (
  req: Req,
  md: grpc.Metadata,
  cb: (err: grpc.ServiceError | null, res?: Res) => void,
) => grpc.ClientUnaryCall;

/** Calls a unary method as a promise. */
export function call<Req, Res>(
  method: UnaryMethod<Req, Res>,
  target: object,
  req: Req,
  md: grpc.Metadata,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    method.call(target, req, md, (err, res) => (err ? reject(err) : resolve(res as Res)));
  });
}

/** What to upload. */
export interface UploadSpec {
  readonly federationId: string;
  readonly round: number;
  readonly clientId: string;
  readonly updateId: string;
  readonly samples?: number;
  readonly configJson: string;
  readonly bytes: Uint8Array;
  /** Declare this content hash (hex) instead of the real one. */
  readonly contentHash?: string;
  /** Declare this size instead of the real one. */
  readonly totalSize?: number;
  readonly resumeOffset?: number;
  /** Send only the bytes from `resumeOffset` up to this offset, then cancel. */
  readonly stopAt?: number;
  /** Training metrics of the header. */
  readonly metrics?: Readonly<Record<string, number>>;
}

/** Streams an update in 1 MiB chunks; resolves with the ack. `auth`: a bearer token, or the call's metadata. */
export function upload(
  client: GrpcClient<typeof ClientService>,
  auth: string | grpc.Metadata,
  spec: UploadSpec,
): Promise<SubmitUpdateResponse> {
  return new Promise((resolve, reject) => {
    const md = typeof auth === "string" ? bearer(auth) : auth;
    const stream = client.submitUpdate(md, (err, res) => (err ? reject(err) : resolve(res!)));
    const start = spec.resumeOffset ?? 0;
    stream.write(
      create(SubmitUpdateRequestSchema, {
        payload: {
          case: "header",
          value: {
            federationId: spec.federationId,
            round: spec.round,
            clientId: spec.clientId,
            updateId: spec.updateId,
            sampleCount: BigInt(spec.samples ?? 100),
            contentHash: spec.contentHash ?? createHash("sha256").update(spec.bytes).digest("hex"),
            totalSize: BigInt(spec.totalSize ?? spec.bytes.length),
            adapterConfigJson: spec.configJson,
            resumeOffset: BigInt(start),
            metrics: { ...spec.metrics },
          },
        },
      }),
    );
    const end = spec.stopAt ?? spec.bytes.length;
    for (let pos = start; pos < end; pos += CHUNK_BYTES) {
      stream.write(
        create(SubmitUpdateRequestSchema, {
          payload: { case: "chunk", value: spec.bytes.subarray(pos, Math.min(end, pos + CHUNK_BYTES)) },
        }),
      );
    }
    if (spec.stopAt !== undefined) {
      // Let the written chunks reach the server, then drop the call mid-upload.
      setTimeout(() => stream.cancel(), 300);
    } else stream.end();
  });
}

/** Downloads an adapter over `FetchAdapter`. */
export function fetchAdapter(
  client: GrpcClient<typeof ClientService>,
  token: string,
  req: FetchAdapterRequest,
): Promise<{ round: number; contentHash: string; configJson: string; bytes: Buffer }> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let header: { round: number; contentHash: string; configJson: string } | undefined;
    const stream = client.fetchAdapter(req, bearer(token));
    stream.on("data", (msg: { payload: { case?: string; value?: unknown } }) => {
      if (msg.payload.case === "header") {
        const h = msg.payload.value as { round: number; contentHash: string; adapterConfigJson: string };
        header = { round: h.round, contentHash: h.contentHash, configJson: h.adapterConfigJson };
      } else if (msg.payload.case === "chunk") parts.push(Buffer.from(msg.payload.value as Uint8Array));
    });
    stream.on("error", reject);
    stream.on("end", () => {
      if (header === undefined) reject(new Error("no adapter header"));
      else resolve({ ...header, bytes: Buffer.concat(parts) });
    });
  });
}
