/**
 * `npm run bench -- failover`: two coordinators on one JetStream store (a
 * local nats-server), a federation led by one of them; the leader is killed
 * with SIGKILL and the time until the survivor journals its election is
 * measured, for each lease length, several times. The reference is the
 * lease itself: fail-over cannot be shorter than what is left of the dead
 * leader's lease, nor (by design) much longer than the lease.
 *
 * Options: --lease 2,6 (seconds), --runs 3
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import type { JournalEvent } from "../server/src/core/store.ts";
import { type CoordinatorProcess, startCoordinatorProcess } from "../test/helpers/coordinator-process.ts";
import { createTestFederation } from "../test/helpers/federation.ts";
import { clientsFor } from "../test/helpers/grpc-calls.ts";
import { startNatsServer } from "../test/helpers/nats-server.ts";
import { publishTable } from "./bench-output.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until `probe` answers something, for at most `ms`. */
async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const got = await probe().catch((err: unknown) => {
      if (process.env.BENCH_DEBUG) console.error(err);
      return undefined;
    });
    if (got !== undefined) return got;
    if (Date.now() > end) throw new Error(`no ${what} within ${ms} ms`);
    await sleep(20);
  }
}

/** One fail-over: ms from the leader's SIGKILL to the survivor's `leader-elected` event. */
async function once(leaseS: number, work: string): Promise<number> {
  const nats = await startNatsServer({ jetstream: true });
  const procs = new Map<string, CoordinatorProcess>();
  const nc = await connect({ servers: nats.url });
  try {
    for (const id of ["coord-a", "coord-b"]) {
      procs.set(
        id,
        await startCoordinatorProcess({
          dataDir: join(work, `${leaseS}-${Date.now()}-${id}`),
          natsUrl: nats.url,
          args: ["--store", "jetstream", "--coordinator-id", id, "--lease-ttl", String(leaseS)],
        }),
      );
    }
    const conn = clientsFor(procs.get("coord-a")!.address);
    const fed = await createTestFederation(conn.operator, work, { id: `bench-${Date.now()}`, clients: 1 });
    conn.close();
    const kv = await new Kvm(nc).open("tributary-leases");
    const leader = await until("leader", async () => {
      const e = await kv.get(`lease.${fed.federationId}`);
      return e?.operation === "PUT" ? e.json<{ coordinatorId: string }>().coordinatorId : undefined;
    });
    const survivor = leader === "coord-a" ? "coord-b" : "coord-a";
    const killedAt = Date.now();
    await procs.get(leader)!.kill("SIGKILL");
    const js = jetstream(nc);
    const elected = await until("election of the survivor", async () => {
      const consumer = await js.consumers.get("TRIBUTARY_JOURNAL");
      for (;;) {
        const m = await consumer.next({ expires: 1_000 });
        if (m === null) return undefined;
        const e = m.json<JournalEvent>();
        if (process.env.BENCH_DEBUG)
          console.error(e.seq, e.type, e.type === "leader-elected" ? e.leader : "");
        if (e.type === "leader-elected" && e.leader.coordinatorId === survivor) return e.at;
      }
    });
    return elected - killedAt;
  } finally {
    for (const p of procs.values()) await p.kill("SIGKILL");
    await nc.close();
    await nats.close();
  }
}

/** Runs the fail-over benchmark. */
export async function runFailoverBench(args: string[]): Promise<void> {
  const li = args.indexOf("--lease");
  const leases = li >= 0 ? args[li + 1].split(",").map(Number) : [2, 6];
  const ri = args.indexOf("--runs");
  const runs = ri >= 0 ? Number(args[ri + 1]) : 3;
  const work = await mkdtemp(join(tmpdir(), "tributary-failover-bench-"));
  const rows: string[] = [];
  try {
    for (const lease of leases) {
      const times: number[] = [];
      for (let i = 0; i < runs; i++) {
        times.push(await once(lease, work));
        console.error(`lease ${lease} s, run ${i + 1}: fail-over in ${times.at(-1)} ms`);
      }
      const sorted = [...times].sort((a, b) => a - b);
      const median = sorted[Math.floor(sorted.length / 2)];
      rows.push(
        `| ${lease} | ${times.map((t) => (t / 1000).toFixed(2)).join(", ")} | ${(median / 1000).toFixed(2)} | ${(median / (lease * 1000)).toFixed(2)} |`,
      );
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  publishTable(
    "failover",
    [
      "| lease (s) | fail-over, each run (s) | median (s) | median / lease |",
      "|---|---|---|---|",
      ...rows,
    ].join("\n"),
  );
}
