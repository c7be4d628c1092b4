import assert from "node:assert/strict";
import { test } from "node:test";
import { UsageError } from "./args.ts";
import { runServe, SERVE_USAGE } from "./serve-command.ts";

const quiet = { out: () => {}, err: () => {} };

test("tributary serve refuses a bound on active uploads that is not a positive integer, before starting", async () => {
  await assert.rejects(
    runServe(["--max-active-uploads", "0"], quiet),
    (e: unknown) =>
      e instanceof UsageError && /--max-active-uploads expects a positive integer, got 0/.test(e.message),
  );
  await assert.rejects(
    runServe(["--max-active-uploads", "two"], quiet),
    (e: unknown) => e instanceof UsageError && /--max-active-uploads/.test(e.message),
  );
});

test("tributary serve --help documents --max-active-uploads and its variable", () => {
  assert.match(SERVE_USAGE, /--max-active-uploads N/);
  assert.match(SERVE_USAGE, /TRIBUTARY_MAX_ACTIVE_UPLOADS/);
});
