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

test("tributary serve takes every per-client stream limit as a flag, refusing one below 1 before starting", async () => {
  for (const flag of [
    "--client-uploads",
    "--client-downloads",
    "--client-watches",
    "--max-connection-idle",
  ]) {
    assert.match(SERVE_USAGE, new RegExp(flag));
    await assert.rejects(
      runServe([flag, "0"], quiet),
      (e: unknown) => e instanceof UsageError && e.message.includes(flag),
    );
  }
  for (const variable of [
    "TRIBUTARY_CLIENT_UPLOADS",
    "TRIBUTARY_CLIENT_DOWNLOADS",
    "TRIBUTARY_CLIENT_WATCHES",
  ]) {
    assert.match(SERVE_USAGE, new RegExp(variable));
  }
});

test("tributary serve --store takes file or jetstream, and --replicas only with jetstream", async () => {
  assert.match(SERVE_USAGE, /--store KIND/);
  assert.match(SERVE_USAGE, /TRIBUTARY_REPLICAS/);
  await assert.rejects(
    runServe(["--store", "s3"], quiet),
    (e: unknown) =>
      e instanceof UsageError && /--store expects "file" or "jetstream", got "s3"/.test(e.message),
  );
  await assert.rejects(
    runServe(["--replicas", "3"], quiet),
    (e: unknown) => e instanceof UsageError && /--replicas applies to --store jetstream/.test(e.message),
  );
  await assert.rejects(
    runServe(["--store", "jetstream", "--replicas", "0"], quiet),
    (e: unknown) => e instanceof UsageError && e.message.includes("--replicas"),
  );
});
