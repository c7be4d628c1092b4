import assert from "node:assert/strict";
import { test } from "node:test";
import { QuotaExceededError } from "../../coordinator/errors.ts";
import { clientSlots } from "./client-slots.ts";

test("clientSlots refuses a client's slot past the limit, per client, until one is released", () => {
  const take = clientSlots(2, "concurrent_downloads", "downloads");
  const a1 = take("alice");
  take("alice");
  take("bob");
  assert.throws(
    () => take("alice"),
    (e: unknown) =>
      e instanceof QuotaExceededError &&
      e.clientId === "alice" &&
      e.quota === "concurrent_downloads" &&
      e.limit === 2 &&
      e.message.includes("2 downloads of this client are still running"),
  );
  a1();
  a1(); // idempotent: releasing twice frees one slot only
  take("alice");
  assert.throws(() => take("alice"), QuotaExceededError);
});
