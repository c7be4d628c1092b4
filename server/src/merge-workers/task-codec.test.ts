import assert from "node:assert/strict";
import { test } from "node:test";
import { AdapterFormatError } from "@tributary/protocol";
import type { ModuleFiles } from "../core/merge-runner.ts";
import { MergeInputError } from "../merge/errors.ts";
import { resolveOptions } from "../merge/options.ts";
import {
  decodeJson,
  decodeModuleResult,
  decodeOutcome,
  encodeJson,
  encodeModuleResult,
  encodeOutcome,
  failureOf,
  filesOf,
  taskError,
  taskFor,
} from "./task-codec.ts";

const loc = (path: string, name: string) => ({
  path,
  file: "client c1/adapter_model.safetensors",
  name,
  dtype: "BF16",
  shape: [4, 8],
  offset: 96,
  byteLength: 64,
});
const files: ModuleFiles = {
  name: "model.layers.0.self_attn.q_proj",
  dIn: 8,
  dOut: 8,
  clients: [{ rank: 4, scaling: 2, a: loc("/cache/u1", "a"), b: loc("/cache/u1", "b") }],
};

test("a task names stored objects instead of local paths, and becomes files again on a worker", () => {
  const opts = resolveOptions({ method: "ties", rank: 4 });
  const object = { name: "updates/f/1/c1/u1", size: 4096, sha256: "ab".repeat(32) };
  const task = taskFor("t1", "reply", files, opts, (p) => (p === "/cache/u1" ? object : undefined));
  assert.ok(task !== undefined);
  assert.doesNotMatch(JSON.stringify(task), /\/cache\/u1/);
  const back = decodeJson<typeof task>(encodeJson(task));
  const defined = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined));
  assert.deepEqual(back.opts, defined, "options survive (fields left undefined stay so)");
  const local = filesOf(back, (o) => `/worker/${o.name}`);
  assert.equal(local.clients[0].a.path, "/worker/updates/f/1/c1/u1");
  assert.deepEqual({ ...local.clients[0].b, path: "" }, { ...files.clients[0].b, path: "" });
  assert.equal(
    taskFor("t2", "reply", files, opts, () => undefined),
    undefined,
    "a file that is no stored object's copy is merged locally",
  );
});

test("non-finite numbers cross as themselves", () => {
  assert.deepEqual(
    decodeJson(encodeJson({ a: Number.POSITIVE_INFINITY, b: Number.NaN, c: [1, -Infinity] })),
    {
      a: Number.POSITIVE_INFINITY,
      b: Number.NaN,
      c: [1, Number.NEGATIVE_INFINITY],
    },
  );
});

test("a merged module's bytes decode to the same factors and report; cut bytes are refused", () => {
  const result = {
    name: "m",
    merged: { rank: 2, a: Float32Array.from([1.5, -2, 3e-8, 4]), b: Float32Array.from([0.25, Math.PI]) },
    report: { weights: [0.5, 0.5], objective: null, residual: 1e-3, iterations: 0, solver: "core-eig" },
  };
  const bytes = encodeModuleResult(result);
  assert.deepEqual(decodeModuleResult(bytes), result);
  assert.throws(() => decodeModuleResult(bytes.subarray(0, bytes.length - 4)), /expected/);
  assert.throws(() => decodeModuleResult(new Uint8Array(2)), /no complete header/);
});

test("an input the merge could not use comes back as the same typed error, so the leader leaves that client out", () => {
  const adapter = failureOf(new AdapterFormatError("bad tensor", "client c2/adapter_model.safetensors", "x"));
  assert.ok(adapter !== undefined);
  const e1 = taskError(adapter, "w1");
  assert.ok(e1 instanceof AdapterFormatError && e1.file === "client c2/adapter_model.safetensors");
  const input = failureOf(new MergeInputError("shapes differ", "m", 1));
  assert.ok(input !== undefined);
  const e2 = taskError(input, "w1");
  assert.ok(e2 instanceof MergeInputError && e2.client === 1 && e2.module === "m");
  assert.equal(failureOf(new Error("disk on fire")), undefined);
  assert.match(
    taskError({ kind: "failed", message: "out of memory" }, "w9").message,
    /merge worker w9: out of memory/,
  );
});

test("an outcome carries a small result inline, and none when it names an object", () => {
  const result = encodeModuleResult({
    name: "m",
    merged: { rank: 1, a: Float32Array.from([1, 2]), b: Float32Array.from([3]) },
    report: { weights: [1], objective: null, residual: null, iterations: 0, solver: "closed" },
  });
  const outcome = { taskId: "t", worker: "w1", delivery: 2, ms: 5 };
  const inline = decodeOutcome(encodeOutcome(outcome, result));
  assert.deepEqual(inline.outcome, outcome);
  assert.deepEqual(inline.inline, result);
  const named = { ...outcome, resultObject: { name: "t", size: 9, sha256: "00" } };
  assert.deepEqual(decodeOutcome(encodeOutcome(named)), { outcome: named });
  assert.throws(() => decodeOutcome(new Uint8Array([200, 0, 0, 0, 1])), /cut short/);
});
