/**
 * The coordinator as a separate process (`tributary serve`), for tests that
 * kill it: started on a data dir, a port and an external NATS, and ready once
 * it prints "listening".
 */
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { OPERATOR_TOKEN } from "./federation.ts";

const BIN = fileURLToPath(new URL("../../server/bin/tributary.mjs", import.meta.url));

/** A running `tributary serve`. */
export interface CoordinatorProcess {
  readonly pid: number;
  readonly port: number;
  readonly address: string;
  /** Everything it wrote to stderr so far. */
  stderr(): string;
  /** Sends `signal` and waits for the process to exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts `tributary serve` (port 0 = any free port) and waits until it listens. */
export async function startCoordinatorProcess(opts: {
  dataDir: string;
  natsUrl: string;
  port?: number;
  timeoutMs?: number;
  /** More `tributary serve` options. */
  args?: readonly string[];
  /** More environment variables (e.g. `TRIBUTARY_LOG`). */
  env?: Readonly<Record<string, string>>;
}): Promise<CoordinatorProcess> {
  const args = [BIN, "serve", "--data-dir", opts.dataDir, "--port", String(opts.port ?? 0)];
  args.push(
    "--nats-url",
    opts.natsUrl,
    "--threads",
    "0",
    "--ui-port",
    "0",
    "--drain",
    "0",
    ...(opts.args ?? []),
  );
  const child: ChildProcess = spawn(process.execPath, args, {
    env: {
      ...process.env,
      TRIBUTARY_OPERATOR_TOKEN: OPERATOR_TOKEN,
      TRIBUTARY_LOG: process.env.TRIBUTARY_TEST_LOG ?? "warn",
      ...opts.env,
    },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let err = "";
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const kill = async (signal: NodeJS.Signals = "SIGTERM") => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  try {
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`coordinator did not listen within ${opts.timeoutMs ?? 30_000} ms:\n${err}`)),
        opts.timeoutMs ?? 30_000,
      );
      child.stderr!.setEncoding("utf8");
      child.stderr!.on("data", (text: string) => {
        err += text;
        const m = /listening on [^\s]*:(\d+)/.exec(err);
        if (m !== null) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      });
      child.once("exit", (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`coordinator exited (${code ?? signal}) before listening:\n${err}`));
      });
    });
    return {
      pid: child.pid!,
      port,
      address: `127.0.0.1:${port}`,
      stderr: () => err,
      kill,
    };
  } catch (e) {
    await kill("SIGKILL");
    throw e;
  }
}
