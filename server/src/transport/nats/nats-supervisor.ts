/**
 * A local `nats-server` for `npm start` when no NATS URL is configured:
 * JetStream stored under `<dataDir>/nats`, loopback only, restarted with
 * backoff when it dies, stopped on `close()`.
 */
import { mkdir } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import { type Log, type LogFields, silentLog } from "@tributary/protocol";
import { findNatsServer } from "./nats-binary.ts";
import { type NatsServerProcess, spawnNatsServer } from "./nats-process.ts";

/** Options of {@link startLocalNats}. */
export interface LocalNatsOptions {
  /** The coordinator's data dir; JetStream stores under `<dataDir>/nats`. */
  readonly dataDir: string;
  /** Preferred client port (default 4222); a free one is used when it is taken, or when this is 0. */
  readonly port?: number;
  readonly log?: Log;
  /** Explicit binary path (default: searched on PATH, `/usr/sbin`, `/usr/local/bin`). */
  readonly binary?: string;
  /** The PATH searched for the binary (default `process.env.PATH`). */
  readonly pathEnv?: string;
  /** First restart delay after an unexpected exit (default 500 ms); doubles up to `maxRestartDelayMs`. */
  readonly restartDelayMs?: number;
  /** Longest restart delay (default 30 s). */
  readonly maxRestartDelayMs?: number;
}

/** A supervised local server. */
export interface LocalNats {
  /** `nats://127.0.0.1:<port>`; the same across restarts. */
  readonly url: string;
  readonly port: number;
  /** JetStream store dir (`<dataDir>/nats`). */
  readonly storeDir: string;
  /** Process id of the current server process (changes when it is restarted). */
  pid(): number;
  /** Stops the server (and the supervision) and waits for it to exit. */
  close(): Promise<void>;
}

/** The default NATS client port. */
export const DEFAULT_NATS_PORT = 4222;
/** A server that stays up this long resets the restart backoff. */
const STABLE_MS = 10_000;

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once("error", () => resolve(false));
    probe.listen({ host: "127.0.0.1", port, exclusive: true }, () => probe.close(() => resolve(true)));
  });
}

function forwardLogLine(log: Log, line: string): void {
  const fields: LogFields = { source: "nats-server" };
  if (line.includes("[ERR]") || line.includes("[FTL]")) log.error(line, fields);
  else if (line.includes("[WRN]")) log.warn(line, fields);
}

/**
 * Starts and supervises a local JetStream-enabled `nats-server`.
 *
 * @throws {NatsServerNotFoundError} when the binary is not installed (the message says how to install it
 *   or how to point the coordinator at an existing server instead).
 * @throws {NatsServerStartError} when the first start fails.
 * @example
 * const nats = await startLocalNats({ dataDir: "data", log: console });
 * const publisher = createNatsPublisher({ servers: nats.url });
 * // … on shutdown
 * await publisher.close();
 * await nats.close();
 */
export async function startLocalNats(options: LocalNatsOptions): Promise<LocalNats> {
  const log = options.log ?? silentLog;
  const binary = findNatsServer({ binary: options.binary, pathEnv: options.pathEnv });
  const storeDir = join(options.dataDir, "nats");
  await mkdir(storeDir, { recursive: true, mode: 0o700 });
  const preferred = options.port ?? DEFAULT_NATS_PORT;
  const free = preferred > 0 && (await portIsFree(preferred));
  const launch = (port: number) =>
    spawnNatsServer({ binary, port, storeDir, onLogLine: (line) => forwardLogLine(log, line) });

  let current: NatsServerProcess = await launch(free ? preferred : -1);
  const port = current.port;
  if (free || preferred === 0) log.info(`nats-server listening on 127.0.0.1:${port}`, { binary, storeDir });
  else
    log.warn(`port ${preferred} is busy: nats-server listening on 127.0.0.1:${port}`, { binary, storeDir });

  let closing = false;
  let restartTimer: NodeJS.Timeout | undefined;
  let relaunching: Promise<unknown> = Promise.resolve();
  const initialDelayMs = options.restartDelayMs ?? 500;
  const maxDelayMs = options.maxRestartDelayMs ?? 30_000;
  let delayMs = initialDelayMs;
  const killOnExit = () => {
    if (current.hasExited()) return;
    try {
      process.kill(current.pid, "SIGKILL");
    } catch {
      // already gone
    }
  };
  process.once("exit", killOnExit);

  const relaunch = async () => {
    restartTimer = undefined;
    if (closing) return;
    try {
      current = await launch(port);
    } catch (err) {
      scheduleRestart(`failed to restart (${(err as Error).message.split("\n")[0]})`);
      return;
    }
    if (closing) {
      await current.stop();
      return;
    }
    log.info(`nats-server restarted on 127.0.0.1:${port}`);
    supervise(current);
  };

  const scheduleRestart = (reason: string) => {
    if (closing) return;
    const waitMs = delayMs;
    delayMs = Math.min(delayMs * 2, maxDelayMs);
    log.error(`nats-server ${reason}: restarting in ${waitMs} ms`, { tail: current.logTail().slice(-5) });
    restartTimer = setTimeout(() => {
      relaunching = relaunch();
    }, waitMs);
  };

  const supervise = (proc: NatsServerProcess) => {
    const startedAt = Date.now();
    void proc.exited.then((exit) => {
      if (closing || proc !== current) return;
      if (Date.now() - startedAt >= STABLE_MS) delayMs = initialDelayMs;
      scheduleRestart(`exited unexpectedly (code ${exit.code}, signal ${exit.signal})`);
    });
  };
  supervise(current);

  return {
    url: current.url,
    port,
    storeDir,
    pid: () => current.pid,
    async close() {
      if (closing) return;
      closing = true;
      clearTimeout(restartTimer);
      await relaunching;
      await current.stop();
      process.removeListener("exit", killOnExit);
      log.info("nats-server stopped");
    },
  };
}
