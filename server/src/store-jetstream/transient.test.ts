import assert from "node:assert/strict";
import { test } from "node:test";
import { StoreUnavailableError } from "../core/store-errors.ts";
import { isTransient, retryTransient, retryUntilReady } from "./transient.ts";

const named = (name: string) => Object.assign(new Error(name), { name });

test("a timed-out or unanswered JetStream request is transient; a refusal is not", () => {
  assert.equal(isTransient(named("TimeoutError")), true);
  assert.equal(isTransient(new Error("request failed", { cause: named("NoRespondersError") })), true);
  assert.equal(isTransient(new Error("wrong last sequence")), false);
  assert.equal(isTransient("timeout"), false);
});

test("retryTransient retries passing failures, gives up with StoreUnavailableError, and throws others at once", async () => {
  let calls = 0;
  assert.equal(
    await retryTransient(async () => {
      if (++calls < 3) throw named("TimeoutError");
      return "ok";
    }),
    "ok",
  );
  assert.equal(calls, 3);
  await assert.rejects(
    retryTransient(async () => {
      throw named("TimeoutError");
    }, 300),
    (err) => err instanceof StoreUnavailableError && /did not answer/.test(err.message),
  );
  calls = 0;
  await assert.rejects(
    retryTransient(async () => {
      calls++;
      throw new RangeError("not transient");
    }),
    RangeError,
  );
  assert.equal(calls, 1);
});

test("retryUntilReady tries again while the cluster forms, then names what it could not create and where", async () => {
  let calls = 0;
  const retried: unknown[] = [];
  const ready = await retryUntilReady(
    async () => {
      if (++calls < 3) throw named("TimeoutError");
      return "bucket";
    },
    { servers: ["nats://n1:4222"], what: "the lease bucket", onRetry: (err) => retried.push(err) },
  );
  assert.equal(ready, "bucket");
  assert.equal(retried.length, 2);
  await assert.rejects(
    retryUntilReady(
      async () => {
        throw named("TimeoutError");
      },
      { servers: ["nats://n1:4222", "nats://n2:4222"], what: "the lease bucket", readyTimeoutMs: 600 },
    ),
    (err) =>
      err instanceof StoreUnavailableError &&
      err.message.includes("could not create the lease bucket") &&
      err.message.includes("nats://n1:4222,nats://n2:4222") &&
      err.message.includes("-js"),
  );
});
