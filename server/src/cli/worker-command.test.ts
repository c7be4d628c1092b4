import assert from "node:assert/strict";
import { test } from "node:test";
import { UsageError } from "./args.ts";
import { runWorker, WORKER_USAGE } from "./worker-command.ts";

const quiet = { out: () => {}, err: () => {} };

test("tributary worker needs the coordinators' NATS cluster, and refuses --threads below 1, before starting", async () => {
  const saved = process.env.TRIBUTARY_NATS_URL;
  delete process.env.TRIBUTARY_NATS_URL;
  try {
    await assert.rejects(
      runWorker([], quiet),
      (e: unknown) => e instanceof UsageError && /needs --nats-url/.test(e.message),
    );
    await assert.rejects(
      runWorker(["--nats-url", "nats://127.0.0.1:4222", "--threads", "0"], quiet),
      (e: unknown) => e instanceof UsageError && /--threads expects at least 1, got 0/.test(e.message),
    );
  } finally {
    if (saved !== undefined) process.env.TRIBUTARY_NATS_URL = saved;
  }
});

test("tributary worker --help names every option and its variable", async () => {
  let out = "";
  assert.equal(await runWorker(["--help"], { out: (t) => (out += t), err: () => {} }), 0);
  assert.equal(out, WORKER_USAGE);
  for (const flag of ["--nats-url", "--threads", "--backend", "--id", "--cache-dir", "--max-inline-result"])
    assert.match(out, new RegExp(flag));
  for (const v of [
    "TRIBUTARY_NATS_URL",
    "TRIBUTARY_WORKER_ID",
    "TRIBUTARY_WORKER_CACHE",
    "TRIBUTARY_WORKER_MAX_INLINE",
  ])
    assert.match(out, new RegExp(v));
});
