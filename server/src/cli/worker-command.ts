/**
 * `tributary worker`: a merge worker for coordinators on the JetStream store
 * (`merge-workers/merge-worker.ts`), on any machine that reaches their NATS
 * cluster.
 */
import { resolve } from "node:path";
import { redactCredentials } from "@tributary/client/nats";
import { installDecompositions } from "../compute/lapack.ts";
import { createMergePool } from "../compute/merge-pool.ts";
import { startMergeWorker } from "../merge-workers/merge-worker.ts";
import { natsServers } from "../service/coordinator-service.ts";
import { pinoLog } from "../telemetry/pino-log.ts";
import { integerOption, parseFlags, UsageError } from "./args.ts";
import type { CliIo } from "./io.ts";

/** Help text of `tributary worker`. */
export const WORKER_USAGE = `Usage: tributary worker --nats-url URLS [options]

Merges modules of the rounds that coordinators on the JetStream store
(tributary serve --store jetstream) hand out; any number of workers, on any
machine that reaches the NATS cluster. Its access is NATS's: give the URLs
credentials (nats://user:pass@host:4222) where the cluster requires them.

Options (environment variable in brackets):
  --nats-url URLS   the coordinators' NATS cluster, comma-separated
                    [TRIBUTARY_NATS_URL] (required)
  --threads N       modules merged at once (default: one per core)
  --backend NAME    tensor backend: webgpu, blas, wasm, cpu (default: the
                    best available) [TRIBUTARY_BACKEND]
  --id ID           this worker's name in the coordinators' logs (default:
                    host name and pid) [TRIBUTARY_WORKER_ID]
  --cache-dir DIR   where the parts of clients' updates it fetched are kept
                    while their round merges (default: data/worker)
                    [TRIBUTARY_WORKER_CACHE]
  --max-inline-result BYTES  merged modules up to this size go back in the
                    outcome message, larger ones through the object store
                    (default 786432; keep it under the cluster's max_payload)
                    [TRIBUTARY_WORKER_MAX_INLINE]`;

/** Runs `tributary worker` until SIGINT/SIGTERM; returns the exit code. */
export async function runWorker(argv: readonly string[], io: CliIo): Promise<number> {
  const flags = parseFlags(argv, ["nats-url", "threads", "backend", "id", "cache-dir", "max-inline-result"]);
  if (flags.help) {
    io.out(WORKER_USAGE);
    return 0;
  }
  const str = (flag: string, env: string) => flags.value(flag, env);
  const natsUrl = str("nats-url", "TRIBUTARY_NATS_URL");
  if (natsUrl === undefined || natsServers(natsUrl).length === 0) {
    throw new UsageError(
      "tributary worker needs --nats-url: the NATS cluster of the coordinators' JetStream store",
    );
  }
  const threads = integerOption("threads", flags.value("threads"));
  if (threads !== undefined && threads < 1)
    throw new UsageError(`--threads expects at least 1, got ${threads}`);
  const backend = str("backend", "TRIBUTARY_BACKEND");
  const id = str("id", "TRIBUTARY_WORKER_ID");
  const cacheDir = resolve(str("cache-dir", "TRIBUTARY_WORKER_CACHE") ?? "data/worker");
  const maxInline = integerOption(
    "max-inline-result",
    str("max-inline-result", "TRIBUTARY_WORKER_MAX_INLINE"),
  );
  if (maxInline !== undefined && maxInline < 0) {
    throw new UsageError(`--max-inline-result expects a size in bytes, got ${maxInline}`);
  }

  const log = pinoLog({ name: "tributary-worker" });
  const pool = await createMergePool({
    ...(threads !== undefined ? { threads } : {}),
    ...(backend !== undefined ? { backend } : {}),
  });
  await installDecompositions();
  try {
    const worker = await startMergeWorker({
      servers: natsServers(natsUrl),
      ...(id !== undefined ? { id } : {}),
      pool,
      cacheDir,
      ...(maxInline !== undefined ? { maxInlineResult: maxInline } : {}),
      log,
    });
    io.err(
      `tributary worker ${worker.id} on ${redactCredentials(natsUrl)}: ${worker.slots} module(s) at once on ${pool.backend.name}`,
    );
    io.err(`  cache: ${cacheDir}`);
    const signal = await new Promise<NodeJS.Signals>((done) => {
      process.once("SIGINT", done);
      process.once("SIGTERM", done);
    });
    io.err(`${signal}: finishing the tasks in hand, then leaving`);
    await worker.close();
    io.err(`merged ${worker.done()} module(s)`);
    return 0;
  } finally {
    await pool.close();
  }
}
