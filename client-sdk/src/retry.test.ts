import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Metadata, type ServiceError, status } from "@grpc/grpc-js";
import { ErrorReason, serviceError } from "@tributary/protocol";
import {
  fromServiceError,
  InternalError,
  InvalidUpdateError,
  isTransient,
  NotInCohortError,
  PreconditionError,
  StaleRoundError,
  UnavailableError,
  UpdateTooLargeError,
} from "./errors.ts";
import { backoffDelay, type RetryInfo, resolveRetry, withRetry } from "./retry.ts";

function grpcError(
  code: status,
  details: string,
  reason?: ErrorReason,
  metadata?: Record<string, string | number>,
): ServiceError {
  if (reason !== undefined) return serviceError({ code, message: details, reason, metadata: metadata ?? {} });
  return Object.assign(new Error(`${code} ${status[code]}: ${details}`), {
    code,
    details,
    metadata: new Metadata(),
  });
}

describe("backoffDelay", () => {
  it("doubles from the initial delay up to the cap, with up to half of it random", () => {
    const retry = resolveRetry({ initialDelayMs: 100, maxDelayMs: 1000 });
    assert.equal(
      backoffDelay(2, retry, () => 1),
      100,
    );
    assert.equal(
      backoffDelay(2, retry, () => 0),
      50,
    );
    assert.equal(
      backoffDelay(3, retry, () => 1),
      200,
    );
    assert.equal(
      backoffDelay(5, retry, () => 1),
      800,
    );
    assert.equal(
      backoffDelay(9, retry, () => 1),
      1000,
    );
    assert.equal(
      backoffDelay(9, retry, () => 0),
      500,
    );
  });
});

describe("error mapping", () => {
  it("types errors by their ErrorInfo reason and keeps the server's message and metadata", () => {
    const stale = fromServiceError(
      grpcError(status.FAILED_PRECONDITION, "round 1 is not open for updates", ErrorReason.STALE_ROUND, {
        round: 1,
        current_round: 2,
        current_state: "open",
      }),
    );
    assert.ok(stale instanceof StaleRoundError);
    assert.equal(stale.code, "FAILED_PRECONDITION");
    assert.equal(stale.reason, "STALE_ROUND");
    assert.equal(stale.currentRound, 2);
    assert.deepEqual(stale.metadata, { round: "1", current_round: "2", current_state: "open" });
    assert.match(stale.message, /^FAILED_PRECONDITION \(STALE_ROUND\): round 1 is not open/);
    assert.ok(
      fromServiceError(
        grpcError(status.FAILED_PRECONDITION, "any text", ErrorReason.NOT_IN_COHORT),
      ) instanceof NotInCohortError,
    );
    const invalid = fromServiceError(
      grpcError(status.INVALID_ARGUMENT, "bad", ErrorReason.INVALID_TENSOR, { tensor: "m.lora_A.weight" }),
    );
    assert.ok(invalid instanceof InvalidUpdateError);
    assert.equal(invalid.tensor, "m.lora_A.weight");
    assert.ok(
      fromServiceError(grpcError(status.RESOURCE_EXHAUSTED, "too big")) instanceof UpdateTooLargeError,
    );
  });

  it("never decides on message text", () => {
    const e = fromServiceError(
      grpcError(status.FAILED_PRECONDITION, "round 1 is not open for updates; the current round is 2"),
    );
    assert.ok(!(e instanceof StaleRoundError) && e instanceof PreconditionError);
    assert.equal(e.reason, undefined);
    assert.equal(
      isTransient(grpcError(status.FAILED_PRECONDITION, "resume_offset 10 does not match the 20 bytes")),
      false,
    );
  });

  it("retries dropped connections but not refusals or internal errors", () => {
    for (const code of [status.UNAVAILABLE, status.DEADLINE_EXCEEDED, status.CANCELLED, status.ABORTED]) {
      assert.equal(isTransient(grpcError(code, "x")), true, status[code]);
    }
    for (const code of [status.INTERNAL, status.UNKNOWN]) {
      assert.equal(isTransient(grpcError(code, "x")), false, status[code]);
      assert.ok(fromServiceError(grpcError(code, "x")) instanceof InternalError, status[code]);
    }
    for (const code of [
      status.INVALID_ARGUMENT,
      status.FAILED_PRECONDITION,
      status.ALREADY_EXISTS,
      status.PERMISSION_DENIED,
      status.UNAUTHENTICATED,
      status.NOT_FOUND,
      status.RESOURCE_EXHAUSTED,
    ]) {
      assert.equal(isTransient(grpcError(code, "x")), false, status[code]);
    }
    assert.equal(
      isTransient(grpcError(status.FAILED_PRECONDITION, "x", ErrorReason.RESUME_OFFSET_MISMATCH)),
      true,
    );
  });
});

describe("withRetry", () => {
  it("retries transient failures, then gives up with UnavailableError", async () => {
    const seen: RetryInfo[] = [];
    const retry = resolveRetry({ attempts: 3, initialDelayMs: 1, onRetry: (i) => seen.push(i) });
    let calls = 0;
    await assert.rejects(
      withRetry("join f", retry, async () => {
        calls++;
        throw grpcError(status.UNAVAILABLE, "No connection established");
      }),
      (err: unknown) => {
        assert.ok(err instanceof UnavailableError);
        assert.equal(err.code, "UNAVAILABLE");
        assert.match(err.message, /join f: coordinator unreachable after 3 tries/);
        return true;
      },
    );
    assert.equal(calls, 3);
    assert.deepEqual(
      seen.map((s) => s.attempt),
      [2, 3],
    );
  });

  it("fails at once on a permanent error, and returns a later success", async () => {
    const retry = resolveRetry({ attempts: 5, initialDelayMs: 1 });
    let calls = 0;
    await assert.rejects(
      withRetry("submit", retry, async () => {
        calls++;
        throw grpcError(status.FAILED_PRECONDITION, "round 1 is not open", ErrorReason.STALE_ROUND, {
          current_round: 2,
        });
      }),
      StaleRoundError,
    );
    assert.equal(calls, 1);
    let tries = 0;
    const got = await withRetry("x", retry, async (attempt) => {
      tries = attempt;
      if (attempt < 3) throw grpcError(status.UNAVAILABLE, "down");
      return "ok";
    });
    assert.equal(got, "ok");
    assert.equal(tries, 3);
  });

  it("stops waiting when the signal aborts", async () => {
    const retry = resolveRetry({ attempts: 10, initialDelayMs: 10_000 });
    const controller = new AbortController();
    const p = withRetry(
      "x",
      retry,
      async () => {
        throw grpcError(status.UNAVAILABLE, "down");
      },
      controller.signal,
    );
    setTimeout(() => controller.abort(new Error("stop")), 20);
    await assert.rejects(p, /stop/);
  });
});
