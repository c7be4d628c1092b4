/**
 * A merge worker as a separate process (`tributary worker`), for tests that
 * kill it: started on an external NATS with info logs, ready once it says it
 * attached; its log lines are kept, and a test can wait for one.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const BIN = fileURLToPath(new URL("../../server/bin/tributary.mjs", import.meta.url));

/** One JSON log line of a worker. */
export interface WorkerLogLine {
  readonly msg: string;
  readonly task?: string;
  readonly module?: string;
  readonly delivery?: number;
  readonly [field: string]: unknown;
}

/** A running `tributary worker`. */
export interface WorkerProcess {
  readonly id: string;
  readonly pid: number;
  /** Its log lines so far. */
  lines(): WorkerLogLine[];
  /** Resolves with the first line (already written or to come) that `match` accepts. */
  when(match: (line: WorkerLogLine) => boolean): Promise<WorkerLogLine>;
  /** Sends `signal`; waits for the exit unless it only stops or continues the process. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts `tributary worker --nats-url natsUrl --id id --threads 1` and waits until it attached. */
export async function startWorkerProcess(opts: {
  id: string;
  natsUrl: string;
  cacheDir: string;
  timeoutMs?: number;
  /** More `tributary worker` options. */
  args?: readonly string[];
}): Promise<WorkerProcess> {
  const child: ChildProcess = spawn(
    process.execPath,
    [
      BIN,
      "worker",
      "--nats-url",
      opts.natsUrl,
      "--id",
      opts.id,
      "--threads",
      "1",
      "--cache-dir",
      opts.cacheDir,
      ...(opts.args ?? []),
    ],
    { env: { ...process.env, TRIBUTARY_LOG: "info" }, stdio: ["ignore", "pipe", "pipe"] },
  );
  const lines: WorkerLogLine[] = [];
  const waiters = new Set<{ match: (l: WorkerLogLine) => boolean; resolve: (l: WorkerLogLine) => void }>();
  let text = "";
  let pending = "";
  const take = (chunk: string) => {
    text += chunk;
    pending += chunk;
    const parts = pending.split("\n");
    pending = parts.pop() ?? "";
    for (const part of parts) {
      if (!part.startsWith("{")) continue;
      const line = JSON.parse(part) as WorkerLogLine;
      lines.push(line);
      for (const w of waiters) {
        if (w.match(line)) {
          waiters.delete(w);
          w.resolve(line);
        }
      }
    }
  };
  child.stdout!.setEncoding("utf8");
  child.stderr!.setEncoding("utf8");
  child.stdout!.on("data", take);
  child.stderr!.on("data", take);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const when = (match: (l: WorkerLogLine) => boolean) =>
    new Promise<WorkerLogLine>((resolve) => {
      const seen = lines.find(match);
      if (seen !== undefined) resolve(seen);
      else waiters.add({ match, resolve });
    });
  const worker: WorkerProcess = {
    id: opts.id,
    pid: child.pid!,
    lines: () => [...lines],
    when,
    async kill(signal = "SIGTERM") {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      if (signal !== "SIGSTOP" && signal !== "SIGCONT") await exited;
    },
  };
  const timeout = opts.timeoutMs ?? 30_000;
  await Promise.race([
    when((l) => l.msg === "merge worker attached"),
    exited.then(() => {
      throw new Error(`worker ${opts.id} exited before attaching:\n${text}`);
    }),
    new Promise((_, reject) =>
      setTimeout(
        () => reject(new Error(`worker ${opts.id} did not attach within ${timeout} ms:\n${text}`)),
        timeout,
      ).unref(),
    ),
  ]);
  return worker;
}
