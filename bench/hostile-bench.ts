/**
 * `npm run bench -- hostile`: a hostile client's parse bombs against a real
 * `tributary serve` process, while an honest client of the same federation
 * sends a Heartbeat every 20 ms. Attacks, each sent `--repeat` times by
 * `--attackers` concurrent streams:
 *
 * - `redos-key`: `rank_pattern` key `(.*){8}!` (stalled every RPC for 12 s
 *   when keys were compiled to regular expressions);
 * - `header-bomb`: a 64 MB safetensors header of 6 M metadata keys (80 s of
 *   stall and 3 GB of RSS when it was parsed);
 * - `deep-json`: `adapter_config.json` nested 10,000 deep.
 *
 * Each attack is sent for `--seconds` by `--attackers` clients, one stream
 * each at a time. Reports how fast each is refused, and the honest client's
 * Heartbeat latency during each attack (a worker thread of its own) next to
 * the same with no attack (same run).
 *
 * Then the slow-uploader attack, on a coordinator of its own with 4 upload
 * turns (`--max-active-uploads 4`, the other limits at their defaults):
 * `--attackers` clients each trickle one byte every 2 s (never idle for the
 * 60 s idle timeout) and an honest client uploads its adapter; the honest
 * upload's time is reported next to the same upload with no attack.
 *
 * Options: --seconds 5 --attackers 4
 */
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import type * as grpc from "@grpc/grpc-js";
import { statusDetailsOf } from "@tributary/protocol";
import { startCoordinatorProcess } from "../test/helpers/coordinator-process.ts";
import { createTestFederation, joinAll } from "../test/helpers/federation.ts";
import { clientsFor } from "../test/helpers/grpc-calls.ts";
import { startNatsServer } from "../test/helpers/nats-server.ts";
import { trickle } from "../test/helpers/trickle.ts";
import { publishTable } from "./bench-output.ts";
import { streamUpdate } from "./stream-update.ts";

const _root = new URL("..", import.meta.url).pathname;
const MB = 1e6;

type Client = ReturnType<typeof clientsFor>["client"];

interface Attack {
  readonly name: string;
  readonly what: string;
  readonly configJson: string;
  readonly bytes: Uint8Array;
  readonly contentHash: string;
}

/** A safetensors file whose header is `mb` MB of `__metadata__` keys (no tensors). */
function headerBomb(mb: number): Uint8Array {
  const keys: string[] = [];
  let size = 20;
  for (let i = 0; size < mb * MB; i++) {
    const entry = `"k${i}":""`;
    keys.push(entry);
    size += entry.length + 1;
  }
  const json = new TextEncoder().encode(`{"__metadata__":{${keys.join(",")}}}`);
  const out = new Uint8Array(8 + json.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  return out;
}

/** The coordinator's answer to an upload: `ACCEPTED`, or its error's reason (its status code without one). */
function answerOf(err: grpc.ServiceError | null): string {
  return err === null ? "ACCEPTED" : (statusDetailsOf(err)?.errorInfo?.reason ?? String(err.code));
}

/** Streams `u`; resolves with ms to the coordinator's answer and the answer. */
async function timedUpload(
  client: Client,
  token: string,
  u: Parameters<typeof streamUpdate>[2],
): Promise<{ ms: number; reason: string }> {
  const t0 = performance.now();
  const err = await streamUpdate(client, token, u);
  return { ms: performance.now() - t0, reason: answerOf(err) };
}

/** Streams `a` as `clientId`, the `i`-th time. */
function sendAttack(
  client: Client,
  token: string,
  federationId: string,
  clientId: string,
  a: Attack,
  i: number,
): Promise<{ ms: number; reason: string }> {
  return timedUpload(client, token, {
    federationId,
    clientId,
    updateId: `attack-${a.name}-${i}`,
    samples: 100,
    contentHash: a.contentHash,
    configJson: a.configJson,
    bytes: a.bytes,
  });
}

/** The honest client's Heartbeats, from a worker thread, until `stop()`; returns the latencies. */
function probe(address: string, token: string, federationId: string) {
  const ms: number[] = [];
  const worker = new Worker(new URL("./heartbeat-probe-entry.mjs", import.meta.url), {
    workerData: { address, token, federationId },
  });
  worker.on("message", (v: number) => ms.push(v));
  return {
    async stop() {
      const exited = new Promise((r) => worker.once("exit", r));
      worker.postMessage("stop");
      await exited;
      return ms;
    },
  };
}

const quantile = (xs: readonly number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN;
};

/** Runs the benchmark (see the module comment). */
export async function runHostileBench(args: string[]): Promise<void> {
  const opt = (name: string, dflt: number) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? Number(args[i + 1]) : dflt;
  };
  const seconds = opt("seconds", 5);
  const attackers = opt("attackers", 4);
  const work = await mkdtemp(join(tmpdir(), "tributary-hostile-"));
  const nats = await startNatsServer({ jetstream: true });
  const proc = await startCoordinatorProcess({ dataDir: join(work, "data"), natsUrl: nats.url });
  const conn = clientsFor(proc.address);
  try {
    const fed = await createTestFederation(conn.operator, work, {
      id: "hostile",
      clients: attackers + 1,
      rank: 4,
    });
    await joinAll(conn.client, fed);
    const [honest, ...evil] = fed.clients;
    const config = JSON.parse(evil[0].configJson) as Record<string, unknown>;
    let deep = "0";
    for (let i = 0; i < 10_000; i++) deep = `[${deep}]`;
    const attack = (name: string, what: string, configJson: string, bytes: Uint8Array): Attack => ({
      name,
      what,
      configJson,
      bytes,
      contentHash: createHash("sha256").update(bytes).digest("hex"),
    });
    const attacks: Attack[] = [
      attack(
        "redos-key",
        "`rank_pattern` key `(.*){8}!`",
        JSON.stringify({ ...config, rank_pattern: { "(.*){8}!": 4 } }),
        evil[0].bytes,
      ),
      attack(
        "header-bomb",
        "64 MB safetensors header, 6 M metadata keys",
        evil[0].configJson,
        headerBomb(64),
      ),
      attack(
        "deep-json",
        "`adapter_config.json` nested 10,000 deep",
        `${evil[0].configJson.slice(0, -1)},"extra":${deep}}`,
        evil[0].bytes,
      ),
    ];
    const rows: string[] = [];
    const rss = async () =>
      Number(/VmHWM:\s+(\d+)/.exec(await readFile(`/proc/${proc.pid}/status`, "utf8"))?.[1] ?? 0) / 1024;
    const latency = (ms: number[]) =>
      `${quantile(ms, 0.5).toFixed(1)} / ${quantile(ms, 0.99).toFixed(1)} / ${Math.max(...ms).toFixed(1)} ms (${ms.length} calls)`;
    const idle = probe(proc.address, honest.token, fed.federationId);
    await new Promise((r) => setTimeout(r, seconds * 1000));
    rows.push(
      `| none (reference) | — | — | — | ${latency(await idle.stop())} | ${(await rss()).toFixed(0)} MB |`,
    );
    for (const a of attacks) {
      const p = probe(proc.address, honest.token, fed.federationId);
      const refusals: number[] = [];
      const reasons = new Set<string>();
      const until = performance.now() + seconds * 1000;
      let sent = 0;
      await Promise.all(
        evil.map(async (c) => {
          while (performance.now() < until) {
            const r = await sendAttack(conn.client, c.token, fed.federationId, c.id, a, sent++);
            refusals.push(r.ms);
            reasons.add(r.reason);
          }
        }),
      );
      const ms = await p.stop();
      rows.push(
        `| ${a.what} | ${sent} | ${[...reasons].join(", ")} | ${quantile(refusals, 0.5).toFixed(1)} / ${Math.max(...refusals).toFixed(1)} ms | ${latency(ms)} | ${(await rss()).toFixed(0)} MB |`,
      );
    }
    const table = [
      `Hostile clients vs an honest client's Heartbeat (every 20 ms, own thread); ${attackers} attacking clients for ${seconds} s per row; coordinator in its own process (Node ${process.versions.node}):`,
      "",
      "| attack | sent | answer | refused in (median / max) | honest Heartbeat (median / p99 / max) | coordinator peak RSS so far |",
      "|---|---|---|---|---|---|",
      ...rows,
    ].join("\n");
    publishTable("hostile", `${table}\n\n${await slowUploaders(work, nats.url, attackers)}`);
  } finally {
    conn.close();
    await proc.kill("SIGKILL");
    await nats.close();
    await rm(work, { recursive: true, force: true });
  }
}

/** The slow-uploader attack (see the module comment); returns its table. */
async function slowUploaders(work: string, natsUrl: string, attackers: number): Promise<string> {
  const proc = await startCoordinatorProcess({
    dataDir: join(work, "slow"),
    natsUrl,
    args: ["--max-active-uploads", String(attackers)],
  });
  const conn = clientsFor(proc.address);
  try {
    const fed = await createTestFederation(conn.operator, work, {
      id: "slow",
      clients: attackers + 2,
      rank: 4,
    });
    await joinAll(conn.client, fed);
    const [reference, honest, ...evil] = fed.clients;
    const upload = (c: (typeof fed.clients)[number], updateId: string) =>
      timedUpload(conn.client, c.token, {
        federationId: fed.federationId,
        clientId: c.id,
        updateId,
        samples: 100,
        contentHash: createHash("sha256").update(c.bytes).digest("hex"),
        configJson: c.configJson,
        bytes: c.bytes,
      });
    const alone = await upload(reference, "alone");
    const slow = evil.map((c) =>
      trickle(conn.client, { ...c, clientId: c.id, federationId: fed.federationId }, 2_000),
    );
    await new Promise((r) => setTimeout(r, 3_000)); // every turn taken
    const attacked = await upload(honest, "attacked");
    const answered: string[] = [];
    for (const x of slow) {
      void x.done.then(
        () => answered.push(answerOf(null)),
        (err: grpc.ServiceError) => answered.push(answerOf(err)),
      );
    }
    await new Promise((r) => setTimeout(r, 500));
    for (const x of slow) x.stop();
    const deferred = answered.filter((r) => r === "UPLOAD_DEFERRED").length;
    return [
      `Slow uploaders: ${attackers} clients trickle 1 byte every 2 s into all ${attackers} upload turns (\`--max-active-uploads ${attackers}\`, minimum rate and wait bound at their defaults), then an honest client uploads (${(honest.bytes.length / 1e3).toFixed(0)} kB):`,
      "",
      "| honest upload | time to ack | answer |",
      "|---|---|---|",
      `| alone (reference) | ${alone.ms.toFixed(0)} ms | ${alone.reason} |`,
      `| while the turns are held by tricklers | ${attacked.ms.toFixed(0)} ms | ${attacked.reason} |`,
      "",
      `Tricklers deferred (UPLOAD_DEFERRED, their bytes kept for a resume): ${deferred} of ${attackers}; one deferral per waiting upload, the others kept their turns while nobody waited.`,
    ].join("\n");
  } finally {
    conn.close();
    await proc.kill("SIGKILL");
  }
}
