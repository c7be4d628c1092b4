import assert from "node:assert/strict";
import { test } from "node:test";
import type { RoundRecord } from "../core/model.ts";
import { parseSafetensors } from "../peft/safetensors.ts";
import {
  InvalidUpdateError,
  NotInCohortError,
  StaleRoundError,
  UpdateConflictError,
  UpdateTooLargeError,
} from "./errors.ts";
import { encodeTestAdapter, schemaModules, testFederation, updateRecord } from "./testing/fixtures.ts";
import { validateUpdateContent } from "./testing/update-content.ts";
import { type SubmitHeader, type UpdateRequest, validateUpdate } from "./update-validator.ts";

const SHA = "ab".repeat(32);
const fed = testFederation({ maxUpdateBytes: 4096 });
const Q = "model.layers.0.self_attn.q_proj";
const V = "model.layers.0.self_attn.v_proj";

function round(number: number, state: RoundRecord["state"] = "open"): RoundRecord {
  return {
    federationId: fed.id,
    number,
    state,
    openedAt: 0,
    deadlineAt: 60_000,
    extended: false,
    cohort: ["alice", "bob"],
  };
}

function request(header: Partial<SubmitHeader> = {}, rest: Partial<UpdateRequest> = {}): UpdateRequest {
  return {
    federation: fed,
    clientId: "alice",
    header: {
      federationId: fed.id,
      round: 3,
      clientId: "alice",
      updateId: "u-1",
      samples: 10,
      metrics: {},
      sha256: SHA,
      totalSize: 2048,
      resumeOffset: 0,
      configJson: encodeTestAdapter().configText,
      ...header,
    },
    currentRound: round(3),
    accepted: [],
    ...rest,
  };
}

function throwsWith<E extends Error>(
  fn: () => unknown,
  type: new (...args: never[]) => E,
  pattern: RegExp,
): E {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof type, `expected ${type.name}, got ${String(caught)}`);
  assert.match(caught.message, pattern);
  return caught;
}

test("a good header is new", () => {
  assert.deepEqual(validateUpdate(request()), { kind: "new" });
  assert.deepEqual(
    validateUpdate(request({ configJson: encodeTestAdapter({ baseModel: null }).configText })),
    {
      kind: "new",
    },
  );
});

test("a stale round names the submitted and the current round", () => {
  const merging = throwsWith(
    () => validateUpdate(request({}, { currentRound: round(3, "merging") })),
    StaleRoundError,
    /round 3 is not open.*current round is 3 \(merging\)/,
  );
  assert.equal(merging.code, "failed-precondition");
  assert.equal(merging.currentState, "merging");
  throwsWith(
    () => validateUpdate(request({ round: 2 })),
    StaleRoundError,
    /round 2 is not open.*current round is 3 \(open\)/,
  );
  throwsWith(
    () => validateUpdate(request({ round: 1 }, { currentRound: undefined })),
    StaleRoundError,
    /no round has been opened/,
  );
});

test("only the cohort may submit", () => {
  const err = throwsWith(
    () => validateUpdate(request({}, { clientId: "carol" })),
    NotInCohortError,
    /"carol" is not in the cohort of round 3/,
  );
  assert.equal(err.code, "failed-precondition");
});

test("the same update id is a duplicate, another one conflicts", () => {
  const existing = updateRecord("alice", 3, { updateId: "u-1", sha256: SHA });
  const dup = validateUpdate(request({}, { accepted: [existing] }));
  assert.deepEqual(dup, { kind: "duplicate", existing });
  // A retry after a lost ack is still answered once the round has closed.
  const late = validateUpdate(request({}, { accepted: [existing], currentRound: round(3, "merging") }));
  assert.equal(late.kind, "duplicate");
  const other = throwsWith(
    () => validateUpdate(request({ updateId: "u-2" }, { accepted: [existing] })),
    UpdateConflictError,
    /already submitted update "u-1" for round 3/,
  );
  assert.equal(other.code, "already-exists");
  throwsWith(
    () => validateUpdate(request({ sha256: "cd".repeat(32) }, { accepted: [existing] })),
    UpdateConflictError,
    /reused update id "u-1".*different content/,
  );
  // Another client's update, or this client's update of another round, does not count.
  const bobs = updateRecord("bob", 3, { updateId: "u-1", sha256: SHA });
  assert.equal(validateUpdate(request({}, { accepted: [bobs, updateRecord("alice", 2)] })).kind, "new");
});

test("size limit", () => {
  const err = throwsWith(
    () => validateUpdate(request({ totalSize: 5000 })),
    UpdateTooLargeError,
    /"alice" is 5000 bytes.*limit of 4096 bytes/,
  );
  assert.equal(err.code, "resource-exhausted");
});

test("header fields and config are checked", () => {
  const field = (header: Partial<SubmitHeader>, name: string): void => {
    const err = throwsWith(() => validateUpdate(request(header)), InvalidUpdateError, /client "alice"/);
    assert.equal(err.field, name);
    assert.equal(err.code, "invalid-argument");
  };
  field({ sha256: "ab".repeat(31) }, "content_hash");
  field({ sha256: "zz".repeat(32) }, "content_hash");
  field({ samples: -1 }, "sample_count");
  field({ samples: 1.5 }, "sample_count");
  field({ updateId: "" }, "update_id");
  field({ updateId: "a/b" }, "update_id");
  // The store's rule, refused at intake rather than by the store after the upload.
  field({ updateId: "a:b" }, "update_id");
  field({ updateId: ".." }, "update_id");
  field({ totalSize: 0 }, "total_size");
  field({ configJson: "{not json" }, "adapter_config_json");
  field({ configJson: JSON.stringify({ peft_type: "IA3" }) }, "adapter_config_json");
  field({ metrics: { loss: Number.NaN } }, "metrics");
});

test("base model mismatch names both models", () => {
  const err = throwsWith(
    () => validateUpdate(request({ configJson: encodeTestAdapter({ baseModel: "other/model" }).configText })),
    InvalidUpdateError,
    /"other\/model".*"tiny\/llama-2l"/,
  );
  assert.equal(err.field, "base_model_name_or_path");
});

function content(spec: Parameters<typeof encodeTestAdapter>[0] = {}) {
  const { configText, safetensors } = encodeTestAdapter(spec);
  return () =>
    validateUpdateContent({ federation: fed, clientId: "alice", configJson: configText, bytes: safetensors });
}

test("a schema-conforming adapter is decoded", () => {
  const adapter = content({ dtype: "BF16" })();
  assert.deepEqual([...adapter.modules.keys()], [Q, V]);
  assert.equal(adapter.modules.get(V)?.dOut, 4);
  assert.equal(adapter.dtype, "BF16");
});

test("module set, dims, rank and dtype are checked against the schema", () => {
  const [q, v] = schemaModules();
  const missing = throwsWith(content({ modules: [q] }), InvalidUpdateError, /module .*v_proj missing/);
  assert.equal(missing.module, V);
  const extra = { name: "model.layers.0.self_attn.k_proj", dIn: 16, dOut: 16, rank: 4 };
  throwsWith(
    content({ modules: [q, v, extra] }),
    InvalidUpdateError,
    /k_proj is not in the federation's schema/,
  );
  const dims = throwsWith(
    content({ modules: [{ ...q, dIn: 8 }, v] }),
    InvalidUpdateError,
    /q_proj maps 8 → 16.*schema says 16 → 16/,
  );
  assert.equal(dims.module, Q);
  throwsWith(content({ modules: [q, { ...v, dOut: 8 }] }), InvalidUpdateError, /v_proj maps 16 → 8/);
  throwsWith(content({ modules: schemaModules(16) }), InvalidUpdateError, /q_proj has rank 16.*max_rank 8/);
  const dtype = throwsWith(
    content({ dtype: "F16" }),
    InvalidUpdateError,
    /is F16; the federation accepts F32, BF16/,
  );
  assert.match(dtype.tensor ?? "", /lora_A\.weight$/);
  const dense = new Map([["base_model.model.score.weight", { shape: [2], data: new Float32Array(2) }]]);
  throwsWith(
    content({ dense }),
    InvalidUpdateError,
    /"base_model\.model\.score\.weight" is not a LoRA factor/,
  );
});

test("NaN, Inf and malformed files name the tensor", () => {
  const { configText, safetensors } = encodeTestAdapter();
  const name = `base_model.model.${V}.lora_B.weight`;
  const tensor = parseSafetensors(safetensors, "x").tensors.get(name)!;
  new DataView(tensor.bytes.buffer, tensor.bytes.byteOffset).setFloat32(4 * 5, Number.NaN, true);
  const err = throwsWith(
    () =>
      validateUpdateContent({
        federation: fed,
        clientId: "alice",
        configJson: configText,
        bytes: safetensors,
      }),
    InvalidUpdateError,
    /client "alice".*tensor ".*v_proj\.lora_B\.weight" has non-finite value NaN at index 5/,
  );
  assert.equal(err.tensor, name);
  throwsWith(
    () =>
      validateUpdateContent({
        federation: fed,
        clientId: "alice",
        configJson: configText,
        bytes: safetensors.subarray(0, safetensors.length - 3),
      }),
    InvalidUpdateError,
    /client alice\/adapter_model\.safetensors: .*(truncated|trailing|out of range)/,
  );
});
