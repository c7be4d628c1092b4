import assert from "node:assert/strict";
import { test } from "node:test";
import { settled } from "../../testing/settled.ts";
import { uploadGate } from "./upload-gate.ts";

test("uploadGate admits `limit` uploads, then serves the waiting ones first in, first out", async () => {
  const gate = uploadGate(2);
  const a = await gate.enter();
  const b = await gate.enter();
  const order: string[] = [];
  const c = gate.enter().then((release) => {
    order.push("c");
    return release;
  });
  const d = gate.enter().then((release) => {
    order.push("d");
    return release;
  });
  assert.deepEqual(gate.state(), { active: 2, waiting: 2, limit: 2 });
  assert.equal(await settled(c), false);
  a();
  a(); // idempotent: one release frees one turn
  const releaseC = await c;
  assert.equal(await settled(d), false);
  assert.deepEqual(gate.state(), { active: 2, waiting: 1, limit: 2 });
  b();
  const releaseD = await d;
  assert.deepEqual(order, ["c", "d"]);
  releaseC();
  releaseD();
  assert.deepEqual(gate.state(), { active: 0, waiting: 0, limit: 2 });
});

test("an upload cancelled while it waits gives up its place and rejects with the cancel's error", async () => {
  const gate = uploadGate(1);
  const first = await gate.enter();
  let cancel: ((err: Error) => void) | undefined;
  const cancelled = gate.enter((onCancel) => {
    cancel = onCancel;
  });
  let cancelNext: ((err: Error) => void) | undefined;
  const next = gate.enter((onCancel) => {
    cancelNext = onCancel;
  });
  cancel!(new Error("the upload of alice was cancelled while waiting for its turn"));
  await assert.rejects(cancelled, /alice was cancelled while waiting/);
  assert.deepEqual(gate.state(), { active: 1, waiting: 1, limit: 1 });
  first();
  const release = await next; // the cancelled place was skipped
  assert.deepEqual(gate.state(), { active: 1, waiting: 0, limit: 1 });
  cancelNext!(new Error("late")); // a cancel after admission changes nothing
  assert.deepEqual(gate.state(), { active: 1, waiting: 0, limit: 1 });
  release();
  assert.deepEqual(gate.state(), { active: 0, waiting: 0, limit: 1 });
});

test("uploadGate refuses a bound that is not a positive integer", () => {
  assert.throws(() => uploadGate(0), /positive integer, got 0/);
  assert.throws(() => uploadGate(1.5), /positive integer, got 1.5/);
});
