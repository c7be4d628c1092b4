/** One `nats-server` process: spawning it, waiting until it accepts clients, stopping it. */
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { NatsServerStartError } from "./errors.ts";

/** How to start one `nats-server`. */
export interface SpawnNatsServerOptions {
  /** Path of the binary (see `findNatsServer`). */
  readonly binary: string;
  /** Listen address (default `127.0.0.1`). */
  readonly host?: string;
  /** Client port; `-1` lets the server pick a free one. */
  readonly port: number;
  /** Enable JetStream (default true). */
  readonly jetstream?: boolean;
  /** JetStream store directory (`-sd`); required with JetStream. */
  readonly storeDir?: string;
  /** Give up when the server is not ready after this long (default 10 s). */
  readonly readyTimeoutMs?: number;
  /** Receives every line the server logs. */
  readonly onLogLine?: (line: string) => void;
  /** More command-line options (a cluster's `--cluster`, `--routes`, `--name`, …). */
  readonly extraArgs?: readonly string[];
}

/** How a server process ended. */
export interface NatsServerExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** A running `nats-server`. */
export interface NatsServerProcess {
  readonly pid: number;
  /** The client port it listens on. */
  readonly port: number;
  /** `nats://host:port`. */
  readonly url: string;
  /** Settles when the process has exited, for whatever reason. */
  readonly exited: Promise<NatsServerExit>;
  /** Whether the process has exited. */
  hasExited(): boolean;
  /** The last lines it logged. */
  logTail(): string[];
  /** Stops it (SIGTERM, then SIGKILL after `graceMs`, default 5 s) and waits for the exit. */
  stop(graceMs?: number): Promise<void>;
}

const LISTENING = /Listening for client connections on (\S+):(\d+)/;
const READY = /Server is ready/;
const TAIL_LINES = 40;

function commandLine(options: SpawnNatsServerOptions): string[] {
  const args = ["-a", options.host ?? "127.0.0.1", "-p", String(options.port)];
  if (options.jetstream ?? true) {
    if (options.storeDir === undefined) throw new TypeError("spawnNatsServer: JetStream needs a storeDir");
    args.push("-js", "-sd", options.storeDir);
  }
  args.push(...(options.extraArgs ?? []));
  return args;
}

function watchExit(child: ChildProcess): Promise<NatsServerExit> {
  return new Promise((resolve) => {
    child.once("exit", (code, signal) => resolve({ code, signal }));
    child.once("error", () => resolve({ code: null, signal: null }));
  });
}

/**
 * Starts `nats-server` and resolves once it logged that it accepts client
 * connections.
 *
 * @throws {NatsServerStartError} when it exits first, fails to spawn or is not ready in time.
 * @example
 * const server = await spawnNatsServer({ binary: findNatsServer(), port: -1, storeDir: "/tmp/js" });
 * await server.stop();
 */
export async function spawnNatsServer(options: SpawnNatsServerOptions): Promise<NatsServerProcess> {
  const child = spawn(options.binary, commandLine(options), { stdio: ["ignore", "pipe", "pipe"] });
  const tail: string[] = [];
  let listening: { host: string; port: number } | undefined;
  let onLine: (line: string) => void = () => {};
  for (const stream of [child.stdout, child.stderr]) {
    if (stream === null) continue;
    createInterface({ input: stream }).on("line", (line) => {
      tail.push(line);
      if (tail.length > TAIL_LINES) tail.shift();
      options.onLogLine?.(line);
      onLine(line);
    });
  }
  const exited = watchExit(child);
  let spawnError: Error | undefined;
  child.once("error", (err) => {
    spawnError = err;
  });

  const readyTimeoutMs = options.readyTimeoutMs ?? 10_000;
  let timer: NodeJS.Timeout | undefined;
  const ready = new Promise<void>((resolve, reject) => {
    onLine = (line) => {
      const match = LISTENING.exec(line);
      if (match) listening = { host: match[1], port: Number(match[2]) };
      if (READY.test(line) && listening !== undefined) resolve();
    };
    timer = setTimeout(
      () => reject(new NatsServerStartError(`nats-server not ready after ${readyTimeoutMs} ms`, tail)),
      readyTimeoutMs,
    );
    exited.then((exit) =>
      reject(
        new NatsServerStartError(
          `nats-server exited during start-up (code ${exit.code}, signal ${exit.signal})`,
          tail,
          spawnError === undefined ? undefined : { cause: spawnError },
        ),
      ),
    );
  });

  let hasExited = false;
  void exited.then(() => {
    hasExited = true;
  });
  const stop = async (graceMs = 5_000): Promise<void> => {
    if (hasExited || child.pid === undefined) {
      await exited;
      return;
    }
    child.kill("SIGTERM");
    const killer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    await exited;
    clearTimeout(killer);
  };

  try {
    await ready;
  } catch (err) {
    await stop(1_000);
    throw err;
  } finally {
    clearTimeout(timer);
    onLine = () => {};
  }
  const port = listening!.port;
  return {
    pid: child.pid!,
    port,
    url: `nats://${listening!.host}:${port}`,
    exited,
    hasExited: () => hasExited,
    logTail: () => [...tail],
    stop,
  };
}
