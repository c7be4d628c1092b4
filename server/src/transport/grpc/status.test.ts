import assert from "node:assert/strict";
import { test } from "node:test";
import { status } from "@grpc/grpc-js";
import { statusDetailsOf } from "@tributary/protocol";
import { StaleRoundError } from "../../coordinator/errors.ts";
import { toServiceError } from "./status.ts";

test("disk full answers RESOURCE_EXHAUSTED (STORAGE_FULL), not INTERNAL", () => {
  const err = toServiceError(
    Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" }),
  );
  assert.equal(err.code, status.RESOURCE_EXHAUSTED);
  assert.equal(err.details, "the coordinator's storage is full; retry later");
  assert.equal(statusDetailsOf(err)?.errorInfo?.reason, "STORAGE_FULL");
});

test("typed errors carry their reason and metadata; unknown ones a generic INTERNAL", () => {
  const stale = toServiceError(
    new StaleRoundError("fed", 1, { number: 2, state: "open" } as ConstructorParameters<
      typeof StaleRoundError
    >[2]),
  );
  assert.equal(stale.code, status.FAILED_PRECONDITION);
  assert.deepEqual(statusDetailsOf(stale)?.errorInfo?.metadata, {
    federation_id: "fed",
    round: "1",
    current_round: "2",
    current_state: "open",
  });
  const internal = toServiceError(new TypeError("x is undefined"));
  assert.equal(internal.code, status.INTERNAL);
  assert.equal(internal.details, "internal error (see the coordinator log)");
  assert.equal(statusDetailsOf(internal)?.errorInfo?.reason, "INTERNAL");
});
