/**
 * The client against a scripted in-process `ClientService`: integrity
 * checks on downloads, retry/resume of uploads, permanent refusals.
 * (The real coordinator is exercised in `test/client-sdk.test.ts`.)
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import {
  addService,
  ClientService,
  ErrorReason,
  FetchAdapterResponseSchema,
  GetUploadStatusResponseSchema,
  GRPC_CHANNEL_OPTIONS,
  type GrpcServiceImplementation,
  HeartbeatResponseSchema,
  JoinResponseSchema,
  RoundState,
  type SubmitUpdateRequest,
  SubmitUpdateResponseSchema,
  serviceError,
  WatchRoundsResponseSchema,
} from "@tributary/protocol";
import { sha256Hex } from "./adapter-files.ts";
import { connect } from "./client.ts";
import { IntegrityError, StaleRoundError, UnavailableError } from "./errors.ts";

const ADAPTER = new Uint8Array(5000).map((_, i) => i % 251);
const HASH = sha256Hex(ADAPTER);

/** What the fake server does and saw. */
const script = {
  tamper: false,
  /** Status of the next submitUpdate calls, in order (then success). */
  submitFailures: [] as {
    code: grpc.status;
    details: string;
    afterBytes?: number;
    reason?: ErrorReason;
    metadata?: Record<string, string | number>;
  }[],
  /** Bytes the server "holds" per update id. */
  held: new Map<string, number>(),
  statusCalls: 0,
  submitCalls: 0,
  offsets: [] as number[],
};

function fail(
  code: grpc.status,
  details: string,
  reason?: ErrorReason,
  metadata?: Record<string, string | number>,
): Partial<grpc.ServiceError> {
  if (reason !== undefined) return serviceError({ code, message: details, reason, metadata: metadata ?? {} });
  return { code, details, message: details };
}

const round = {
  federationId: "f",
  number: 1,
  state: RoundState.PUBLISHED,
  cohortClientIds: ["c1"],
  resultContentHash: HASH,
};

const handlers: GrpcServiceImplementation<typeof ClientService> = {
  join(_call, callback) {
    callback(
      null,
      create(JoinResponseSchema, { clientId: "c1", federation: { id: "f" }, currentRound: round }),
    );
  },
  watchRounds(call) {
    call.write(create(WatchRoundsResponseSchema, { round }));
  },
  heartbeat(_call, callback) {
    callback(null, create(HeartbeatResponseSchema, {}));
  },
  getUploadStatus(call, callback) {
    script.statusCalls++;
    const held = script.held.get(call.request.updateId) ?? 0;
    callback(null, create(GetUploadStatusResponseSchema, { receivedBytes: BigInt(held) }));
  },
  submitUpdate(call, callback) {
    script.submitCalls++;
    const failure = script.submitFailures.shift();
    let updateId = "";
    let offset = 0;
    let got = 0;
    call.on("data", (msg: SubmitUpdateRequest) => {
      if (msg.payload.case === "header") {
        updateId = msg.payload.value.updateId;
        offset = Number(msg.payload.value.resumeOffset);
        script.offsets.push(offset);
      } else if (msg.payload.case === "chunk") {
        got += msg.payload.value.byteLength;
        script.held.set(updateId, offset + got);
        if (failure?.afterBytes !== undefined && got >= failure.afterBytes) {
          callback(fail(failure.code, failure.details, failure.reason, failure.metadata));
          call.destroy();
        }
      }
    });
    call.on("end", () => {
      if (failure !== undefined && failure.afterBytes === undefined) {
        callback(fail(failure.code, failure.details, failure.reason, failure.metadata));
        return;
      }
      if (failure !== undefined) return;
      callback(
        null,
        create(SubmitUpdateResponseSchema, {
          updateId,
          round: 1,
          accepted: true,
          contentHash: createHash("sha256").update(ADAPTER).digest("hex"),
          size: BigInt(offset + got),
        }),
      );
    });
  },
  fetchAdapter(call) {
    call.write(
      create(FetchAdapterResponseSchema, {
        payload: {
          case: "header",
          value: { round: 1, contentHash: HASH, size: BigInt(ADAPTER.length), adapterConfigJson: "{}" },
        },
      }),
    );
    const bytes = ADAPTER.slice();
    if (script.tamper) bytes[100] ^= 1;
    call.write(create(FetchAdapterResponseSchema, { payload: { case: "chunk", value: bytes } }));
    call.end();
  },
};

describe("client against a scripted coordinator", () => {
  let server: grpc.Server;
  let address: string;
  before(async () => {
    server = new grpc.Server({ ...GRPC_CHANNEL_OPTIONS });
    addService(server, ClientService, handlers);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    address = `127.0.0.1:${port}`;
  });
  after(() => {
    server.forceShutdown();
  });

  it("verifies downloads: a tampered adapter is an IntegrityError", async () => {
    const client = connect({ coordinator: address, token: "t", retry: { initialDelayMs: 1 } });
    try {
      await client.join("f");
      script.tamper = false;
      const good = await client.globalAdapter();
      assert.equal(good.contentHash, HASH);
      assert.equal(good.source, "grpc");
      script.tamper = true;
      await assert.rejects(client.globalAdapter({ round: 1 }), (err: unknown) => {
        assert.ok(err instanceof IntegrityError);
        assert.equal(err.expected, HASH);
        return true;
      });
    } finally {
      script.tamper = false;
      await client.close();
    }
  });

  it("resumes an upload from the bytes the server holds after a transient failure", async () => {
    const retries: number[] = [];
    const client = connect({
      coordinator: address,
      token: "t",
      retry: { initialDelayMs: 1, onRetry: (r) => retries.push(r.attempt) },
    });
    try {
      await client.join("f");
      script.offsets = [];
      script.submitFailures = [{ code: grpc.status.UNAVAILABLE, details: "connection dropped" }];
      const res = await client.submit(1, { configJson: "{}", safetensors: ADAPTER }, { samples: 10 });
      assert.equal(res.attempts, 2);
      assert.equal(res.resumedFrom, ADAPTER.length);
      assert.deepEqual(script.offsets, [0, ADAPTER.length]);
      assert.deepEqual(retries, [2]);
      assert.match(res.updateId, /^r1-[0-9a-f]{40}$/);
    } finally {
      await client.close();
    }
  });

  it("does not retry a stale round", async () => {
    const retries: number[] = [];
    const client = connect({
      coordinator: address,
      token: "t",
      retry: { initialDelayMs: 1, onRetry: (r) => retries.push(r.attempt) },
    });
    try {
      await client.join("f");
      const before = script.submitCalls;
      script.submitFailures = [
        {
          code: grpc.status.FAILED_PRECONDITION,
          details: "round 1 is not open for updates",
          reason: ErrorReason.STALE_ROUND,
          metadata: { round: 1, current_round: 2, current_state: "open" },
        },
      ];
      await assert.rejects(
        client.submit(1, { configJson: "{}", safetensors: ADAPTER.subarray(1) }, { samples: 1 }),
        (err: unknown) => err instanceof StaleRoundError && err.currentRound === 2,
      );
      assert.equal(script.submitCalls - before, 1);
      assert.deepEqual(retries, []);
    } finally {
      await client.close();
    }
  });

  it("gives up on an unreachable coordinator with UnavailableError", async () => {
    const client = connect({
      coordinator: "127.0.0.1:1",
      token: "t",
      retry: { attempts: 2, initialDelayMs: 1 },
    });
    try {
      await assert.rejects(client.join("f"), UnavailableError);
    } finally {
      await client.close();
    }
  });
});
