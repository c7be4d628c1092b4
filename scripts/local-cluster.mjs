#!/usr/bin/env node
// `npm run cluster`: a local 3-node NATS JetStream cluster, two
// coordinators sharing one replicated store (--store jetstream --replicas 3)
// and a merge worker (tributary worker), for trying fail-over by hand. Everything lives under data/cluster/ and
// listens on 127.0.0.1; Ctrl-C stops it all. Kill a coordinator (its pid is
// printed) and watch the other take over on its operator page.
//
// Options: --coordinators N (default 2), --workers N (default 1), --lease-ttl S (default 6).
import { spawn, spawnSync } from "node:child_process";
import { createWriteStream, mkdirSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";

const root = new URL("..", import.meta.url).pathname;
const { values } = parseArgs({
  options: {
    coordinators: { type: "string", default: "2" },
    workers: { type: "string", default: "1" },
    "lease-ttl": { type: "string", default: "6" },
  },
});
const coordinators = Number(values.coordinators);
const workers = Number(values.workers);
const dataDir = join(root, "data", "cluster");
const token = process.env.TRIBUTARY_OPERATOR_TOKEN ?? "trb_local-cluster-operator-token";

const which = spawnSync(
  "sh",
  ["-c", "command -v nats-server || ls /usr/sbin/nats-server /usr/local/bin/nats-server"],
  {
    encoding: "utf8",
  },
);
const natsBinary = which.stdout.split("\n").find((l) => l.trim() !== "");
if (natsBinary === undefined) {
  console.error(
    "local-cluster: nats-server not found: install it with `bash scripts/setup.sh` (apt-get install -y nats-server)",
  );
  process.exit(1);
}

mkdirSync(dataDir, { recursive: true });
const children = [];
const start = (name, command, args) => {
  const child = spawn(command, args, {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, TRIBUTARY_OPERATOR_TOKEN: token },
  });
  // Each process's output goes to data/cluster/<name>.log, and its tail is printed if it exits.
  const log = createWriteStream(join(dataDir, `${name}.log`), { flags: "a" });
  let tail = "";
  for (const stream of [child.stdout, child.stderr]) {
    stream.setEncoding("utf8");
    stream.on("data", (t) => {
      log.write(t);
      tail = (tail + t).slice(-2000);
    });
  }
  child.once("exit", (code, signal) => {
    if (!stopping)
      console.error(`local-cluster: ${name} (pid ${child.pid}) exited (${code ?? signal})\n${tail}`);
  });
  children.push(child);
  return child;
};

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  console.error("local-cluster: stopping");
  for (const c of children.reverse()) c.kill("SIGTERM");
  setTimeout(() => process.exit(0), 3000).unref();
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);

const nodes = [0, 1, 2].map((i) => ({ name: `nats-${i + 1}`, client: 4222 + i, route: 6222 + i }));
const routes = nodes.map((n) => `nats://127.0.0.1:${n.route}`);
for (const [i, n] of nodes.entries()) {
  const dir = join(dataDir, n.name);
  mkdirSync(dir, { recursive: true });
  start(n.name, natsBinary, [
    "-a",
    "127.0.0.1",
    "-p",
    String(n.client),
    "-js",
    "-sd",
    dir,
    "--name",
    n.name,
    "--cluster_name",
    "tributary-local",
    "--cluster",
    routes[i],
    "--routes",
    routes.filter((_, j) => j !== i).join(","),
  ]);
}
const natsUrl = nodes.map((n) => `nats://127.0.0.1:${n.client}`).join(",");
console.error(`local-cluster: NATS cluster ${natsUrl}`);

for (let i = 0; i < coordinators; i++) {
  const id = `coord-${i + 1}`;
  const port = 7070 + 2 * i;
  const child = start(id, process.execPath, [
    join(root, "server/bin/tributary.mjs"),
    "serve",
    "--store",
    "jetstream",
    "--replicas",
    "3",
    "--nats-url",
    natsUrl,
    "--coordinator-id",
    id,
    "--lease-ttl",
    values["lease-ttl"],
    "--advertise",
    `127.0.0.1:${port}`,
    "--data-dir",
    join(dataDir, id),
    "--port",
    String(port),
    "--ui-port",
    String(port + 1),
    "--metrics-port",
    "off",
  ]);
  console.error(
    `local-cluster: ${id} (pid ${child.pid}): gRPC 127.0.0.1:${port}, operator page http://127.0.0.1:${port + 1}/`,
  );
}
for (let i = 0; i < workers; i++) {
  const id = `worker-${i + 1}`;
  const child = start(id, process.execPath, [
    join(root, "server/bin/tributary.mjs"),
    "worker",
    "--nats-url",
    natsUrl,
    "--id",
    id,
    "--cache-dir",
    join(dataDir, id),
  ]);
  console.error(`local-cluster: ${id} (pid ${child.pid}): merges the leaders' modules`);
}
console.error(`local-cluster: each process logs to ${dataDir}/<name>.log`);
console.error(`local-cluster: operator token ${token}
  TRIBUTARY_OPERATOR_TOKEN=${token} npx tributary admin status --coordinator 127.0.0.1:7070
  kill -9 <a coordinator's pid> and watch the other take over (a worker's: its tasks go to
  another worker, or back to the leader); Ctrl-C stops everything`);
