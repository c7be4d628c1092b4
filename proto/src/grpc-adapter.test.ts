import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import {
  addService,
  CHUNK_BYTES,
  GRPC_SERVER_OPTIONS,
  type GrpcClient,
  type GrpcServiceImplementation,
  MAX_MESSAGE_BYTES,
  makeClient,
} from "./grpc-adapter.ts";
import {
  AdapterHeaderSchema,
  ClientService,
  FederationSchema,
  FetchAdapterRequestSchema,
  FetchAdapterResponseSchema,
  GetUploadStatusRequestSchema,
  type GetUploadStatusResponse,
  GetUploadStatusResponseSchema,
  HeartbeatResponseSchema,
  JoinRequestSchema,
  type JoinResponse,
  JoinResponseSchema,
  RoundSchema,
  RoundState,
  type SubmitUpdateRequest,
  SubmitUpdateRequestSchema,
  type SubmitUpdateResponse,
  SubmitUpdateResponseSchema,
  type UpdateHeader,
  UpdateHeaderSchema,
  WatchRoundsRequestSchema,
  WatchRoundsResponseSchema,
} from "./index.ts";

const BASE_MODEL = "meta-llama/Llama-3.2-1B";
const ADAPTER = randomBytes(5 * CHUNK_BYTES);
const ADAPTER_HASH = createHash("sha256").update(ADAPTER).digest("hex");

/** Bytes stored per update id by the fake SubmitUpdate. */
const stored = new Map<string, number>();

const invalid = (details: string): Partial<grpc.StatusObject> => ({
  code: grpc.status.INVALID_ARGUMENT,
  details,
});

const service: GrpcServiceImplementation<typeof ClientService> = {
  join(call, callback) {
    if (call.request.baseModelId !== BASE_MODEL) {
      callback(invalid(`base model "${call.request.baseModelId}" is not "${BASE_MODEL}"`));
      return;
    }
    callback(
      null,
      create(JoinResponseSchema, {
        clientId: "client-1",
        federation: create(FederationSchema, { id: call.request.federationId, displayName: "Demo" }),
        currentRound: create(RoundSchema, { number: 3, state: RoundState.OPEN }),
      }),
    );
  },
  watchRounds(call) {
    for (const state of [RoundState.OPEN, RoundState.MERGING, RoundState.PUBLISHED]) {
      const round = create(RoundSchema, { federationId: call.request.federationId, number: 3, state });
      call.write(create(WatchRoundsResponseSchema, { round }));
    }
    call.end();
  },
  submitUpdate(call, callback) {
    let header: UpdateHeader | undefined;
    const hash = createHash("sha256");
    let size = 0;
    call.on("data", (message: SubmitUpdateRequest) => {
      if (message.payload.case === "header") header = message.payload.value;
      else if (message.payload.case === "chunk") {
        hash.update(message.payload.value);
        size += message.payload.value.byteLength;
      }
    });
    call.on("end", () => {
      const digest = hash.digest();
      if (header === undefined) return callback(invalid("the first message must be an UpdateHeader"));
      if (digest.toString("hex") !== header.contentHash)
        return callback(invalid(`sha256 mismatch for ${header.updateId}`));
      stored.set(header.updateId, size);
      callback(
        null,
        create(SubmitUpdateResponseSchema, {
          updateId: header.updateId,
          round: header.round,
          accepted: true,
          contentHash: digest.toString("hex"),
          size: BigInt(size),
        }),
      );
    });
  },
  heartbeat(_call, callback) {
    callback(null, create(HeartbeatResponseSchema, {}));
  },
  getUploadStatus(call, callback) {
    const size = stored.get(call.request.updateId);
    callback(
      null,
      create(GetUploadStatusResponseSchema, {
        receivedBytes: BigInt(size ?? 0),
        complete: size !== undefined,
      }),
    );
  },
  async fetchAdapter(call) {
    const header = create(AdapterHeaderSchema, {
      round: 3,
      contentHash: ADAPTER_HASH,
      size: BigInt(ADAPTER.byteLength),
      adapterConfigJson: "{}",
    });
    const messages = [create(FetchAdapterResponseSchema, { payload: { case: "header", value: header } })];
    for (let at = 0; at < ADAPTER.byteLength; at += CHUNK_BYTES) {
      const chunk = ADAPTER.subarray(at, at + CHUNK_BYTES);
      messages.push(create(FetchAdapterResponseSchema, { payload: { case: "chunk", value: chunk } }));
    }
    for (const message of messages) {
      if (!call.write(message)) await once(call, "drain");
    }
    call.end();
  },
};

function updateHeader(updateId: string, bytes: Uint8Array): SubmitUpdateRequest {
  const header = create(UpdateHeaderSchema, {
    federationId: "demo",
    round: 3,
    clientId: "client-1",
    updateId,
    sampleCount: 1200n,
    metrics: { loss: 0.42 },
    contentHash: createHash("sha256").update(bytes).digest("hex"),
    totalSize: BigInt(bytes.byteLength),
    adapterConfigJson: "{}",
  });
  return create(SubmitUpdateRequestSchema, { payload: { case: "header", value: header } });
}

function chunks(bytes: Uint8Array, size = CHUNK_BYTES): SubmitUpdateRequest[] {
  const out: SubmitUpdateRequest[] = [];
  for (let at = 0; at < bytes.byteLength; at += size) {
    const value = bytes.subarray(at, at + size);
    out.push(create(SubmitUpdateRequestSchema, { payload: { case: "chunk", value } }));
  }
  return out;
}

/** Streams `messages` with back-pressure and resolves with the server's single response. */
async function submit(
  client: GrpcClient<typeof ClientService>,
  messages: SubmitUpdateRequest[],
): Promise<SubmitUpdateResponse> {
  let failed = false;
  let call!: grpc.ClientWritableStream<SubmitUpdateRequest>;
  const response = new Promise<SubmitUpdateResponse>((resolve, reject) => {
    call = client.submitUpdate((error, res) => {
      failed = error !== null;
      if (error) reject(error);
      else resolve(res!);
    });
  });
  const settled = response.then(
    () => undefined,
    () => undefined,
  );
  for (const message of messages) {
    if (failed) break;
    if (!call.write(message)) await Promise.race([once(call, "drain"), settled]);
  }
  call.end();
  return response;
}

/** Reads a server stream to its end (rejects with the call's status on error). */
async function collect<T>(stream: grpc.ClientReadableStream<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const message of stream as AsyncIterable<T>) out.push(message);
  return out;
}

function expectStatus(code: grpc.status, details: string | RegExp) {
  return (error: unknown): boolean => {
    const e = error as grpc.ServiceError;
    assert.equal(e.code, code, `status ${grpc.status[e.code]}: ${e.details}`);
    if (typeof details === "string") assert.equal(e.details, details);
    else assert.match(e.details, details);
    return true;
  };
}

describe("grpc adapter (real grpc-js server on 127.0.0.1:0)", () => {
  const server = new grpc.Server({ ...GRPC_SERVER_OPTIONS });
  let address = "";
  let client: GrpcClient<typeof ClientService>;

  before(async () => {
    addService(server, ClientService, service);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, p) =>
        error ? reject(error) : resolve(p),
      ),
    );
    address = `127.0.0.1:${port}`;
    client = makeClient(ClientService, address, grpc.credentials.createInsecure());
  });

  after(async () => {
    client.close();
    await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  });

  it("round-trips a unary call", async () => {
    const request = create(JoinRequestSchema, { federationId: "demo", baseModelId: BASE_MODEL });
    const response = await new Promise<JoinResponse>((resolve, reject) =>
      client.join(request, (error, res) => (error ? reject(error) : resolve(res!))),
    );
    assert.deepEqual(
      response,
      create(JoinResponseSchema, {
        clientId: "client-1",
        federation: create(FederationSchema, { id: "demo", displayName: "Demo" }),
        currentRound: create(RoundSchema, { number: 3, state: RoundState.OPEN }),
      }),
    );
  });

  it("delivers an error status with its code and message", async () => {
    const request = create(JoinRequestSchema, { federationId: "demo", baseModelId: "other/model" });
    await assert.rejects(
      new Promise((resolve, reject) =>
        client.join(request, new grpc.Metadata(), { deadline: Date.now() + 10_000 }, (error, res) =>
          error ? reject(error) : resolve(res),
        ),
      ),
      expectStatus(grpc.status.INVALID_ARGUMENT, `base model "other/model" is not "${BASE_MODEL}"`),
    );
  });

  it("uploads 5 MiB in 1 MiB chunks, hashed on the server", async () => {
    const response = await submit(client, [updateHeader("u-1", ADAPTER), ...chunks(ADAPTER)]);
    assert.equal(response.accepted, true);
    assert.equal(response.updateId, "u-1");
    assert.equal(response.size, BigInt(ADAPTER.byteLength));
    assert.equal(response.contentHash, ADAPTER_HASH);

    const status = await new Promise<GetUploadStatusResponse>((resolve, reject) =>
      client.getUploadStatus(
        create(GetUploadStatusRequestSchema, { federationId: "demo", round: 3, updateId: "u-1" }),
        (error, res) => (error ? reject(error) : resolve(res!)),
      ),
    );
    assert.equal(status.receivedBytes, BigInt(ADAPTER.byteLength));
    assert.equal(status.complete, true);
  });

  it("rejects an upload whose bytes do not match the header's sha256", async () => {
    const header = updateHeader("u-2", ADAPTER);
    const corrupted = Buffer.from(ADAPTER);
    corrupted[123] ^= 0xff;
    await assert.rejects(
      submit(client, [header, ...chunks(corrupted)]),
      expectStatus(grpc.status.INVALID_ARGUMENT, "sha256 mismatch for u-2"),
    );
  });

  it("streams round changes, then the adapter header and chunks", async () => {
    const watched = await collect(
      client.watchRounds(create(WatchRoundsRequestSchema, { federationId: "demo" })),
    );
    assert.deepEqual(
      watched.map((m) => m.round?.state),
      [RoundState.OPEN, RoundState.MERGING, RoundState.PUBLISHED],
    );

    const received = await collect(
      client.fetchAdapter(
        create(FetchAdapterRequestSchema, { federationId: "demo", selector: { case: "round", value: 3 } }),
      ),
    );
    const [first, ...rest] = received;
    assert.equal(first?.payload.case, "header");
    assert.equal(first?.payload.value?.contentHash, ADAPTER_HASH);
    assert.equal(rest.length, 5);
    const bytes = Buffer.concat(
      rest.map((m) => (m.payload.case === "chunk" ? m.payload.value : new Uint8Array())),
    );
    assert.equal(createHash("sha256").update(bytes).digest("hex"), ADAPTER_HASH);
  });

  it(`refuses messages over ${MAX_MESSAGE_BYTES} bytes with RESOURCE_EXHAUSTED`, async () => {
    const big = randomBytes(MAX_MESSAGE_BYTES + 1024);
    const unlimited = makeClient(ClientService, address, grpc.credentials.createInsecure(), {
      "grpc.max_send_message_length": 4 * MAX_MESSAGE_BYTES,
    });
    try {
      await assert.rejects(
        submit(unlimited, [updateHeader("u-3", big), ...chunks(big, big.byteLength)]),
        expectStatus(grpc.status.RESOURCE_EXHAUSTED, /larger than max/i),
      );
    } finally {
      unlimited.close();
    }
  });
});

describe("readableDetails", () => {
  it("drops grpc-js's empty resolution note, keeps a real one", async () => {
    const { readableDetails } = await import("./grpc-adapter.ts");
    assert.equal(
      readableDetails(
        "No connection established. Last error: connect ECONNREFUSED 127.0.0.1:7070. Resolution note: ",
      ),
      "No connection established. Last error: connect ECONNREFUSED 127.0.0.1:7070.",
    );
    assert.equal(
      readableDetails("No addresses resolved. Resolution note: DNS lookup failed"),
      "No addresses resolved. Resolution note: DNS lookup failed",
    );
    // Against a port nobody listens on, as the CLIs print it.
    const client = new grpc.Client(`127.0.0.1:${await closedPort()}`, grpc.credentials.createInsecure());
    const err = await new Promise<grpc.ServiceError>((resolve) =>
      client.makeUnaryRequest(
        "/tributary.v1.ClientService/Join",
        (x: Uint8Array) => Buffer.from(x),
        (b: Buffer) => b,
        new Uint8Array(0),
        new grpc.Metadata(),
        { deadline: Date.now() + 3000 },
        (e) => resolve(e as grpc.ServiceError),
      ),
    );
    client.close();
    assert.doesNotMatch(readableDetails(err.details), /Resolution note:\s*$/);
  });
});

/** A loopback port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const { createServer } = await import("node:net");
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
