/**
 * Assertions shared by the integration tests: a gRPC call that must fail with
 * a given status and a message naming the problem, and polling for a
 * condition with a deadline.
 */
import assert from "node:assert/strict";
import { type Metadata, status } from "@grpc/grpc-js";
import { ERROR_DOMAIN, type ErrorReasonName, REASON_STATUS, statusDetailsOf } from "@tributary/protocol";

/**
 * Awaits `promise`, which must reject with gRPC status `code`, machine-readable
 * details whose reason is `reason` (and documented for `code`), and a message
 * matching every pattern. Returns the error's reason metadata.
 */
export async function expectError(
  promise: Promise<unknown>,
  code: status,
  reason: ErrorReasonName,
  ...patterns: RegExp[]
): Promise<Readonly<Record<string, string>>> {
  let err: unknown;
  try {
    await promise;
  } catch (e) {
    err = e;
  }
  await expectStatus(Promise.reject(err ?? new Error("the call succeeded")), code, ...patterns);
  const info = statusDetailsOf(err as { metadata?: Metadata })?.errorInfo;
  assert.equal(info?.reason, reason, `expected reason ${reason}, got ${info?.reason}`);
  return info?.metadata ?? {};
}

/**
 * Awaits `promise`, which must reject with gRPC status `code` and a message
 * matching every pattern. Every error from the coordinator must carry a
 * `google.rpc.ErrorInfo` in domain `tributary.dev` whose reason is one
 * `errors.proto` documents for `code`.
 */
export async function expectStatus(
  promise: Promise<unknown>,
  code: status,
  ...patterns: RegExp[]
): Promise<string> {
  let err: unknown;
  try {
    await promise;
  } catch (e) {
    err = e;
  }
  assert.ok(err !== undefined, `expected ${status[code]}, but the call succeeded`);
  const e = err as { code?: number; details?: string; message?: string };
  const details = e.details ?? e.message ?? String(err);
  assert.equal(
    e.code,
    code,
    `expected ${status[code]}, got ${e.code === undefined ? "no status" : status[e.code]}: ${details}`,
  );
  for (const p of patterns) assert.match(details, p);
  const metadata = (err as { metadata?: Metadata }).metadata;
  if (metadata !== undefined && metadata.get("grpc-status-details-bin").length > 0) {
    const info = statusDetailsOf({ metadata })?.errorInfo;
    assert.ok(info !== undefined, `${status[code]} without a google.rpc.ErrorInfo: ${details}`);
    assert.equal(info.domain, ERROR_DOMAIN);
    assert.equal(
      REASON_STATUS[info.reason as ErrorReasonName],
      code,
      `reason ${info.reason} is not documented for ${status[code]}`,
    );
  } else {
    // grpc-js makes these itself (no connection, deadline, cancel): no server was there to add details.
    const local =
      code === status.UNAVAILABLE || code === status.DEADLINE_EXCEEDED || code === status.CANCELLED;
    assert.ok(
      metadata === undefined || local,
      `${status[code]} from the coordinator carries no grpc-status-details-bin: ${details}`,
    );
  }
  return details;
}

/** Polls `probe` every `everyMs` until it returns something other than `undefined`/`false`. */
export async function waitFor<T>(
  what: string,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 15_000,
  everyMs = 50,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const got = await probe();
    if (got !== undefined && got !== false) return got;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
