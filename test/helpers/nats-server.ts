/**
 * Test launcher for a real `nats-server` (after nats.js `nst/src/launcher.ts`):
 * a loopback server on a free port whose JetStream store lives in a temp dir.
 *
 * @example
 * const nats = await startNatsServer({ jetstream: true });
 * t.after(() => nats.close());
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findNatsServer } from "../../server/src/transport/nats/nats-binary.ts";
import { type NatsServerProcess, spawnNatsServer } from "../../server/src/transport/nats/nats-process.ts";

/** Options of {@link startNatsServer}. */
export interface StartNatsServerOptions {
  /** Enable JetStream (default true). */
  readonly jetstream?: boolean;
  /** Client port (default: a free one, chosen by the server with `-p -1`). */
  readonly port?: number;
  /** JetStream store dir (default: `jetstream/` in the launcher's temp dir). */
  readonly storeDir?: string;
  /** Explicit binary path (default: searched on PATH, `/usr/sbin`, `/usr/local/bin`). */
  readonly binary?: string;
}

/** A server started by {@link startNatsServer}. */
export interface TestNatsServer {
  /** `nats://127.0.0.1:<port>`; stays the same across {@link TestNatsServer.restart}. */
  readonly url: string;
  readonly port: number;
  readonly storeDir: string;
  /** Whether the process is running. */
  running(): boolean;
  /** Kills the server and waits for it to exit; the store dir is kept. */
  stop(): Promise<void>;
  /** Starts it again on the same port with the same store dir (after {@link TestNatsServer.stop}). */
  restart(): Promise<void>;
  /** Stops it and removes the temp dir. Safe to call more than once. */
  close(): Promise<void>;
}

/**
 * Starts a `nats-server` on 127.0.0.1 and waits until it accepts clients.
 *
 * @throws {NatsServerNotFoundError} `nats-server not found: install it with "apt-get install -y nats-server" …`
 */
export async function startNatsServer(options: StartNatsServerOptions = {}): Promise<TestNatsServer> {
  const binary = findNatsServer({ binary: options.binary });
  const jetstream = options.jetstream ?? true;
  const dir = await mkdtemp(join(tmpdir(), "tributary-nats-"));
  const storeDir = options.storeDir ?? join(dir, "jetstream");
  const launch = (port: number) => spawnNatsServer({ binary, port, jetstream, storeDir });
  let proc: NatsServerProcess | undefined;
  try {
    proc = await launch(options.port ?? -1);
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const { port, url } = proc;
  const stop = async () => {
    await proc?.stop();
  };
  return {
    url,
    port,
    storeDir,
    running: () => proc !== undefined && !proc.hasExited(),
    stop,
    async restart() {
      await proc?.stop();
      proc = await launch(port);
    },
    async close() {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
