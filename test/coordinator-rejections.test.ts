/**
 * Every way the coordinator refuses an update or a call, end to end over
 * gRPC: each refusal has the documented status code and a message naming
 * the problem, and nothing refused ever reaches the merge (the round then
 * completes with valid updates and its broadcast adapter equals a direct
 * merge of exactly those).
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { watchResults } from "@tributary/client/nats";
import type { RoundAnnouncement } from "@tributary/protocol";
import {
  ListRoundsRequestSchema,
  ListUpdatesRequestSchema,
  type ListUpdatesResponse,
  StartRoundRequestSchema,
  type SubmitUpdateResponse,
} from "@tributary/protocol";
import { writeSyntheticAdapter } from "../server/src/peft/synthetic-adapter.ts";
import { assertEqualsDirectMerge } from "./helpers/direct-merge.ts";
import { expectError, waitFor } from "./helpers/expect.ts";
import { type Fixture, MODULES, startFixture, type TestClient } from "./helpers/federation.ts";
import { bearer, call, type UploadSpec, upload } from "./helpers/grpc-calls.ts";

const { FAILED_PRECONDITION, INVALID_ARGUMENT, ALREADY_EXISTS, RESOURCE_EXHAUSTED } = grpc.status;
const { UNAUTHENTICATED, PERMISSION_DENIED } = grpc.status;

/** Limit of the test federation: every valid update (rank ≤ 8) fits, a rank-32 one does not. */
const MAX_UPDATE_BYTES = 20_000;

/** A synthetic adapter with other module shapes or rank, read back as upload material. */
async function adapterFiles(
  dir: string,
  spec: { modules?: typeof MODULES; rank: number; dtype: "F32" | "BF16" },
): Promise<{ configJson: string; bytes: Uint8Array }> {
  await writeSyntheticAdapter(dir, {
    modules: spec.modules ?? MODULES,
    rank: spec.rank,
    seed: 99,
    dtype: spec.dtype,
    baseModel: "synthetic/tiny-llama",
  });
  return {
    configJson: await readFile(join(dir, "adapter_config.json"), "utf8"),
    bytes: new Uint8Array(await readFile(join(dir, "adapter_model.safetensors"))),
  };
}

/** A copy of F32 safetensors `bytes` with a NaN as the first value of its first tensor; returns that tensor's name. */
function withNaN(bytes: Uint8Array): { bytes: Uint8Array; tensor: string } {
  const out = new Uint8Array(bytes);
  const view = new DataView(out.buffer);
  const headerLen = Number(view.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(out.subarray(8, 8 + headerLen))) as Record<
    string,
    { dtype: string; data_offsets: [number, number] }
  >;
  const [tensor, info] = Object.entries(header).find(([name]) => name !== "__metadata__")!;
  assert.equal(info.dtype, "F32");
  view.setFloat32(8 + headerLen + info.data_offsets[0], Number.NaN, true);
  return { bytes: out, tensor };
}

/** Every regular file under `dir` (none when it does not exist). */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

describe("refused updates and calls", () => {
  let fx: Fixture;
  let fed: string;
  let c1: TestClient;
  let c2: TestClient;
  let c3: TestClient;
  let firstAck: SubmitUpdateResponse;
  const spec = (c: TestClient, extra: Partial<UploadSpec> = {}): UploadSpec => ({
    federationId: fed,
    round: 1,
    clientId: c.id,
    updateId: `u-${c.id}`,
    samples: 100,
    configJson: c.configJson,
    bytes: c.bytes,
    ...extra,
  });
  const send = (c: TestClient, extra: Partial<UploadSpec> = {}) => upload(fx.client, c.token, spec(c, extra));
  const listUpdates = async (round: number) =>
    (
      (await call(
        fx.operator.listUpdates,
        fx.operator,
        create(ListUpdatesRequestSchema, { federationId: fed, round }),
        fx.operatorMd,
      )) as ListUpdatesResponse
    ).updates;

  before(async () => {
    fx = await startFixture({ clients: 3, method: "from", rank: 4, maxUpdateBytes: MAX_UPDATE_BYTES });
    fed = fx.federationId;
    [c1, c2, c3] = fx.clients;
    await fx.joinAll();
    assert.equal(fx.service.coordinator.current(fed)?.state, "open");
  });
  after(async () => {
    await fx.close();
  });

  describe("authentication and authorisation", () => {
    it("refuses an upload without a token (UNAUTHENTICATED)", async () => {
      await expectError(
        upload(fx.client, new grpc.Metadata(), spec(c1)),
        UNAUTHENTICATED,
        "UNAUTHENTICATED",
        /missing "authorization: Bearer <token>"/,
      );
      await expectError(
        upload(fx.client, "trb_not-a-token-of-this-coordinator", spec(c1)),
        UNAUTHENTICATED,
        "UNAUTHENTICATED",
        /unknown client token/,
      );
    });

    it("refuses a client submitting as another client (PERMISSION_DENIED)", async () => {
      await expectError(
        upload(fx.client, c1.token, spec(c2)),
        PERMISSION_DENIED,
        "PERMISSION_DENIED",
        /belongs to client "client-1", not "client-2"/,
      );
    });

    it("refuses a client of another federation, even with the same client id (PERMISSION_DENIED)", async () => {
      const other = await fx.addFederation({ id: "fed-other", clients: 1 });
      const outsider = other.clients[0];
      assert.equal(outsider.id, c1.id);
      await expectError(
        upload(fx.client, outsider.token, spec(c1)),
        PERMISSION_DENIED,
        "NOT_ENROLLED",
        /client "client-1" is not enrolled in federation "fed-it"/,
      );
    });

    it("refuses operator calls with a client token (UNAUTHENTICATED)", async () => {
      await expectError(
        call(
          fx.operator.listRounds,
          fx.operator,
          create(ListRoundsRequestSchema, { federationId: fed }),
          bearer(c1.token),
        ),
        UNAUTHENTICATED,
        "UNAUTHENTICATED",
        /invalid operator token/,
      );
      await expectError(
        call(
          fx.operator.startRound,
          fx.operator,
          create(StartRoundRequestSchema, { federationId: fed }),
          bearer(c1.token),
        ),
        UNAUTHENTICATED,
        "UNAUTHENTICATED",
        /invalid operator token/,
      );
    });
  });

  describe("content and header checks (INVALID_ARGUMENT, RESOURCE_EXHAUSTED)", () => {
    it("refuses truncated safetensors", async () => {
      const bytes = c2.bytes.subarray(0, 100);
      await expectError(
        send(c2, { bytes, updateId: "truncated" }),
        INVALID_ARGUMENT,
        "MALFORMED_ADAPTER",
        /truncated/,
      );
    });

    it("refuses a garbage safetensors header", async () => {
      const garbage = new TextEncoder().encode("this is not a JSON header");
      const bytes = new Uint8Array(8 + garbage.length);
      new DataView(bytes.buffer).setBigUint64(0, BigInt(garbage.length), true);
      bytes.set(garbage, 8);
      await expectError(
        send(c2, { bytes, updateId: "garbage" }),
        INVALID_ARGUMENT,
        "MALFORMED_ADAPTER",
        /header is not valid UTF-8 JSON/,
      );
    });

    it("refuses a NaN, naming the tensor", async () => {
      // client-3's adapter is F32.
      const { bytes, tensor } = withNaN(c3.bytes);
      const escaped = tensor.replaceAll(".", "\\.");
      await expectError(
        send(c3, { bytes, updateId: "nan" }),
        INVALID_ARGUMENT,
        "INVALID_TENSOR",
        new RegExp(`tensor "${escaped}" has non-finite value NaN`),
      );
    });

    it("refuses bytes that do not match the declared content hash", async () => {
      const contentHash = createHash("sha256").update("something else").digest("hex");
      await expectError(
        send(c2, { contentHash, updateId: "bad-sha" }),
        INVALID_ARGUMENT,
        "CONTENT_MISMATCH",
        /sha256 of the received bytes is [0-9a-f]{64}, declared/,
      );
    });

    it("refuses another base model", async () => {
      const configJson = c2.configJson.replace("synthetic/tiny-llama", "synthetic/other-model");
      assert.notEqual(configJson, c2.configJson);
      await expectError(
        send(c2, { configJson, updateId: "other-base" }),
        INVALID_ARGUMENT,
        "INVALID_FIELD",
        /base_model_name_or_path "synthetic\/other-model".*"synthetic\/tiny-llama"/,
      );
    });

    it("refuses a module of the wrong shape, naming the module", async () => {
      const bad = MODULES[1];
      const modules = MODULES.map((m) => (m === bad ? { ...m, dIn: 32 } : m));
      const files = await adapterFiles(join(fx.root, "wrong-shape"), { modules, rank: 4, dtype: "F32" });
      await expectError(
        send(c2, { ...files, updateId: "wrong-shape" }),
        INVALID_ARGUMENT,
        "INVALID_TENSOR",
        new RegExp(`module ${bad.name.replaceAll(".", "\\.")} maps 32 → ${bad.dOut}`),
      );
    });

    it("refuses a rank above max_rank, naming the module", async () => {
      const files = await adapterFiles(join(fx.root, "rank-16"), { rank: 16, dtype: "BF16" });
      assert.ok(files.bytes.length < MAX_UPDATE_BYTES);
      await expectError(
        send(c2, { ...files, updateId: "rank-16" }),
        INVALID_ARGUMENT,
        "INVALID_TENSOR",
        new RegExp(`module ${MODULES[0].name.replaceAll(".", "\\.")} has rank 16, expected 1 to max_rank 8`),
      );
    });

    it("refuses an update above max_update_bytes (RESOURCE_EXHAUSTED)", async () => {
      const files = await adapterFiles(join(fx.root, "rank-32"), { rank: 32, dtype: "BF16" });
      assert.ok(files.bytes.length > MAX_UPDATE_BYTES);
      await expectError(
        send(c2, { ...files, updateId: "too-large" }),
        RESOURCE_EXHAUSTED,
        "UPDATE_TOO_LARGE",
        new RegExp(
          `is ${files.bytes.length} bytes, above the federation's limit of ${MAX_UPDATE_BYTES} bytes`,
        ),
      );
    });

    it("refuses more bytes than declared (a client lying about its size)", async () => {
      const files = await adapterFiles(join(fx.root, "rank-32"), { rank: 32, dtype: "BF16" });
      await expectError(
        send(c2, { ...files, totalSize: MAX_UPDATE_BYTES, updateId: "lying" }),
        INVALID_ARGUMENT,
        "CONTENT_MISMATCH",
        new RegExp(`would exceed the declared ${MAX_UPDATE_BYTES} bytes`),
      );
    });
  });

  describe("round and idempotency checks", () => {
    it("refuses an update for a round not opened yet (FAILED_PRECONDITION, naming the current round)", async () => {
      await expectError(
        send(c1, { round: 2 }),
        FAILED_PRECONDITION,
        "STALE_ROUND",
        /round 2 is not open for updates; the current round is 1 \(open\)/,
      );
    });

    it("acknowledges a resent update as a duplicate and stores it once", async () => {
      firstAck = await send(c1);
      assert.equal(firstAck.accepted, true);
      assert.equal(firstAck.duplicate, false);
      const again = await send(c1);
      assert.equal(again.duplicate, true);
      assert.equal(again.accepted, true);
      assert.equal(again.updateId, firstAck.updateId);
      assert.equal(again.round, firstAck.round);
      assert.equal(again.size, firstAck.size);
      assert.equal(again.contentHash, firstAck.contentHash);
      const listed = await listUpdates(1);
      assert.deepEqual(
        listed.map((u) => [u.clientId, u.updateId]),
        [[c1.id, `u-${c1.id}`]],
      );
    });

    it("refuses a second, different update from the same client in the round (ALREADY_EXISTS)", async () => {
      await expectError(
        send(c1, { updateId: "second", bytes: c3.bytes, configJson: c3.configJson }),
        ALREADY_EXISTS,
        "UPDATE_CONFLICT",
        /client "client-1" already submitted update "u-client-1" for round 1; update "second" is refused/,
      );
      // The same update id with other content is refused too.
      await expectError(
        send(c1, { bytes: c3.bytes, configJson: c3.configJson }),
        ALREADY_EXISTS,
        "UPDATE_CONFLICT",
        /reused update id "u-client-1" in round 1 for different content/,
      );
    });
  });

  describe("after the refusals", () => {
    it("merges exactly the valid updates", async () => {
      const watch = watchResults({
        servers: fx.nats.url,
        federationId: fed,
        reconnectTimeWaitMs: 200,
      });
      try {
        assert.deepEqual(
          (await listUpdates(1)).map((u) => u.clientId),
          [c1.id],
          "no refused update was accepted",
        );
        await send(c2, { samples: 200 });
        await send(c3, { samples: 300 });
        const it = watch[Symbol.asyncIterator]();
        const next = await it.next();
        assert.equal(next.done, false);
        const announcement: RoundAnnouncement = next.value;
        assert.equal(announcement.round, 1);
        assert.deepEqual(announcement.clients, [c1.id, c2.id, c3.id]);
        const adapter = await watch.fetchAdapter(announcement);
        await assertEqualsDirectMerge(adapter, [c1.dir, c2.dir, c3.dir], {
          rank: 4,
          samples: [100, 200, 300],
        });

        const listed = await listUpdates(1);
        assert.deepEqual(
          listed.map((u) => [u.clientId, u.contentHash]),
          [c1, c2, c3].map((c) => [c.id, createHash("sha256").update(c.bytes).digest("hex")]),
        );
        // Exactly the three accepted files are stored; a refused upload left at
        // most a resumable partial, which is never merged.
        const stored = await filesUnder(join(fx.dataDir, "updates"));
        assert.equal(stored.length, 3, stored.join(", "));
        for (const f of await filesUnder(join(fx.dataDir, "uploads"))) assert.match(f, /\.partial$/);
        // Once the round stopped accepting updates, its partial uploads are deleted.
        await waitFor(
          "round 1's partial uploads to be discarded",
          async () => (await filesUnder(join(fx.dataDir, "uploads", fed, "1"))).length === 0,
        );
      } finally {
        await watch.close();
      }
    });

    it("refuses an update for the published round (FAILED_PRECONDITION, naming the current round)", async () => {
      const current = await waitFor("round 2 to open", () => {
        const r = fx.service.coordinator.current(fed);
        return r?.number === 2 && r;
      });
      assert.equal(current.state, "open");
      await expectError(
        send(c1, { updateId: "late" }),
        FAILED_PRECONDITION,
        "STALE_ROUND",
        /round 1 is not open for updates; the current round is 2 \(open\)/,
      );
      // A retry of the accepted update still gets its ack.
      const again = await send(c1);
      assert.equal(again.duplicate, true);
      assert.equal(again.updateId, firstAck.updateId);
    });
  });
});
