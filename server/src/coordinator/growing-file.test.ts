import assert from "node:assert/strict";
import { test } from "node:test";
import { growingFile } from "./growing-file.ts";

test("a read of a growing file waits until its bytes are written, in any order", async () => {
  const file = growingFile(10);
  const order: number[] = [];
  await file.until(10); // already written
  const far = file.until(300).then(() => order.push(300));
  const near = file.until(100).then(() => order.push(100));
  file.advance(50);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order, []);
  file.advance(120);
  await near;
  assert.deepEqual(order, [100]);
  file.advance(60); // never backwards
  file.advance(300);
  await far;
  assert.deepEqual(order, [100, 300]);
});

test("a cancelled growing file fails the reads waiting and every later one", async () => {
  const file = growingFile(0);
  const waiting = file.until(5);
  file.cancel(new Error("the upload was cut"));
  await assert.rejects(waiting, /the upload was cut/);
  await assert.rejects(file.until(1), /the upload was cut/);
});
