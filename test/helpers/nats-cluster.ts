/**
 * A real NATS JetStream cluster for tests: `size` `nats-server` processes on
 * loopback, routed to each other, each with its own JetStream store dir; any
 * node can be killed (SIGKILL) and started again on the same ports and store.
 *
 * @example
 * const cluster = await startNatsCluster(3);
 * t.after(() => cluster.close());
 * await cluster.nodes[1].kill();
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findNatsServer } from "../../server/src/transport/nats/nats-binary.ts";
import { type NatsServerProcess, spawnNatsServer } from "../../server/src/transport/nats/nats-process.ts";
import { freePort } from "./ports.ts";

/** One node of a {@link TestNatsCluster}. */
export interface TestNatsNode {
  readonly name: string;
  readonly url: string;
  running(): boolean;
  /** kill -9, and wait for the exit; its store dir stays. */
  kill(): Promise<void>;
  /** Starts it again on its ports with its store dir. */
  restart(): Promise<void>;
}

/** A running cluster. */
export interface TestNatsCluster {
  readonly nodes: readonly TestNatsNode[];
  /** Every node's URL, comma-separated (what `--nats-url` takes). */
  readonly url: string;
  /** Stops every node and removes the store dirs. */
  close(): Promise<void>;
}

/** Starts a cluster of `size` nodes (JetStream on every node) and waits until each accepts clients. */
export async function startNatsCluster(size = 3): Promise<TestNatsCluster> {
  const binary = findNatsServer({});
  const dir = await mkdtemp(join(tmpdir(), "tributary-nats-cluster-"));
  const ports = await Promise.all(
    Array.from({ length: size }, async () => [await freePort(), await freePort()]),
  );
  const routes = ports.map(([, route]) => `nats://127.0.0.1:${route}`);
  const procs: (NatsServerProcess | undefined)[] = new Array(size).fill(undefined);
  const launch = async (i: number) => {
    procs[i] = await spawnNatsServer({
      binary,
      port: ports[i][0],
      storeDir: join(dir, `node-${i + 1}`),
      extraArgs: [
        "--name",
        `node-${i + 1}`,
        "--cluster_name",
        "tributary-test",
        "--cluster",
        routes[i],
        "--routes",
        routes.filter((_, j) => j !== i).join(","),
      ],
    });
  };
  try {
    await Promise.all(procs.map((_, i) => launch(i)));
  } catch (err) {
    await Promise.all(procs.map((p) => p?.stop()));
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const nodes = ports.map(
    ([client], i): TestNatsNode => ({
      name: `node-${i + 1}`,
      url: `nats://127.0.0.1:${client}`,
      running: () => procs[i] !== undefined && !procs[i]!.hasExited(),
      async kill() {
        const p = procs[i];
        if (p === undefined || p.hasExited()) return;
        process.kill(p.pid, "SIGKILL");
        await p.exited;
      },
      restart: () => launch(i),
    }),
  );
  return {
    nodes,
    url: nodes.map((n) => n.url).join(","),
    async close() {
      await Promise.all(procs.map((p) => p?.stop(1_000)));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
