/**
 * Assertions shared by the integration tests: a gRPC call that must fail with
 * a given status and a message naming the problem, and polling for a
 * condition with a deadline.
 */
import assert from "node:assert/strict";
import { status } from "@grpc/grpc-js";

/** Awaits `promise`, which must reject with gRPC status `code` and a message matching every pattern. */
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
