import assert from "node:assert/strict";
import { test } from "node:test";
import { systemClock } from "./clock.ts";
import { createFakeClock } from "./testing/fake-clock.ts";

test("systemClock fires due timers and not cancelled ones", async () => {
  // systemClock's timers are unref'd: keep the event loop alive meanwhile.
  const keepAlive = setInterval(() => undefined, 1_000);
  const fired: string[] = [];
  const start = systemClock.now();
  const cancel = systemClock.setTimer(start + 5, () => fired.push("cancelled"));
  cancel();
  await new Promise<void>((resolve) => systemClock.setTimer(start + 10, resolve));
  systemClock.setTimer(start - 1_000, () => fired.push("overdue"));
  await new Promise<void>((resolve) => setTimeout(resolve, 5));
  assert.deepEqual(fired, ["overdue"]);
  assert.ok(systemClock.now() >= start + 10);
  clearInterval(keepAlive);
});

test("the fake clock fires timers in time order, only when advanced", () => {
  const clock = createFakeClock(100);
  const fired: number[] = [];
  clock.setTimer(130, () => fired.push(clock.now()));
  clock.setTimer(110, () => {
    fired.push(clock.now());
    clock.setTimer(120, () => fired.push(clock.now()));
  });
  const cancel = clock.setTimer(115, () => fired.push(-1));
  cancel();
  clock.advance(25);
  assert.deepEqual(fired, [110, 120]);
  assert.equal(clock.now(), 125);
  assert.deepEqual(clock.pending(), [130]);
  clock.advance(5);
  assert.deepEqual(fired, [110, 120, 130]);
});
