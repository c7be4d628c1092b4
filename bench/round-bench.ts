/**
 * `npm run bench -- round`: n = 8 and 32 clients on loopback submit the
 * "Llama-3-8B q_proj+v_proj, r=16" adapter (64 modules, F32, ≈27 MB each)
 * concurrently to a coordinator running in its own process, with a real
 * nats-server. Reports upload throughput, time from the last ack to the NATS
 * announcement, and the coordinator's peak RSS while the uploads arrive and,
 * separately (the peak is started over at the last ack), while the round
 * merges. The same bytes go the same way to a bare grpc-js server (another
 * process) for the reference throughput and the ratio.
 *
 * Options: --clients 8,32; --store file,jetstream (the coordinator's store;
 * default file; several run one after the other in the same invocation, each
 * with its own bare-server reference); --workers 0,1,2,4 (merge workers,
 * `tributary worker --threads 1` processes, attached to the JetStream store;
 * default 0: the coordinator merges in-process on its own threads);
 * --repeat K (each configuration K times, each with its own coordinator and
 * reference, and the median ratio); --raw-windows (the reference server gets
 * the coordinator's HTTP/2 receive windows instead of grpc-js's 64 KiB).
 *
 * The reference runs just before and just after the coordinator's uploads
 * (after one untimed upload that warms the client code), and the ratio is
 * against the mean of the two: the machine's speed drifts between runs. Each
 * row also gives the CPU seconds the receiving server used (all its threads,
 * from /proc) and those of the clients, this process.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import { watchResults } from "@tributary/client/nats";
import {
  ClientService,
  CreateFederationRequestSchema,
  Dtype,
  EnrollClientRequestSchema,
  type EnrollClientResponse,
  GetStatusRequestSchema,
  type GetStatusResponse,
  type GrpcClient,
  JoinRequestSchema,
  makeClient,
  OperatorService,
} from "@tributary/protocol";
import { median } from "../server/src/merge/norm-bound.ts";
import { writeSyntheticAdapter } from "../server/src/peft/synthetic-adapter.ts";
import { bearer, call } from "../test/helpers/grpc-calls.ts";
import { startNatsServer } from "../test/helpers/nats-server.ts";
import { publishTable } from "./bench-output.ts";
import { streamUpdate } from "./stream-update.ts";
import { llama3QV } from "./synthetic.ts";

const root = new URL("..", import.meta.url).pathname;

interface Payload {
  readonly configJson: string;
  readonly bytes: Uint8Array;
}

/** Uploads with backpressure (waits for "drain"), resolving at the ack. */
async function uploadWithBackpressure(
  client: GrpcClient<typeof ClientService>,
  token: string,
  federationId: string,
  clientId: string,
  p: Payload,
): Promise<void> {
  const err = await streamUpdate(client, token, {
    federationId,
    clientId,
    updateId: `bench-${clientId}`,
    samples: 1000,
    contentHash: createHash("sha256").update(p.bytes).digest("hex"),
    configJson: p.configJson,
    bytes: p.bytes,
  });
  if (err !== null) throw err;
}

/** Wall and CPU seconds of one round of uploads. */
interface TimedUploads {
  readonly wallS: number;
  /** CPU seconds of the receiving server process, all its threads. */
  readonly serverCpuS: number;
  /** CPU seconds of this process, where the clients run. */
  readonly clientCpuS: number;
}

/** Uploads `payloads[i]` as client `c<i>` with `tokens[i]`, all at once, to the server at `client` (process `serverPid`). */
async function timedUploads(
  client: GrpcClient<typeof ClientService>,
  serverPid: number,
  tokens: readonly string[],
  federationId: string,
  payloads: readonly Payload[],
): Promise<TimedUploads> {
  const server0 = await cpuSeconds(serverPid);
  const own0 = ownCpuSeconds();
  const t0 = performance.now();
  await Promise.all(
    tokens.map((t, i) => uploadWithBackpressure(client, t, federationId, `c${i}`, payloads[i])),
  );
  const wallS = (performance.now() - t0) / 1000;
  return {
    wallS,
    serverCpuS: (await cpuSeconds(serverPid)) - server0,
    clientCpuS: ownCpuSeconds() - own0,
  };
}

function waitForLine(child: ChildProcess, pattern: RegExp): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let buf = "";
    const onData = (d: Buffer) => {
      buf += d.toString();
      const m = pattern.exec(buf);
      if (m) {
        child.stdout?.off("data", onData);
        child.stderr?.off("data", onData);
        resolve(m);
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("exit", (code) =>
      reject(new Error(`process exited with ${code} before printing ${pattern}:\n${buf}`)),
    );
  });
}

/** The process's resident set now (`VmRSS`) and its peak so far (`VmHWM`), in MB. */
async function rssMb(pid: number): Promise<{ now: number; peak: number }> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  return { now: kb("VmRSS") / 1024, peak: kb("VmHWM") / 1024 };
}

/** CPU seconds (user + system, all threads) `pid` has used so far, from `/proc/PID/stat`. */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  // Fields after the parenthesised command name; utime and stime are the 14th and 15th fields.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** Clock ticks per second of `/proc` times (`getconf CLK_TCK`, 100 on Linux). */
const CLOCK_TICKS = 100;

/** The CPU seconds this process (the uploading clients) has used so far. */
function ownCpuSeconds(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
}

/** Starts the peak (`VmHWM`) over from the current resident set (Linux `clear_refs` 5). */
async function resetPeak(pid: number): Promise<void> {
  await writeFile(`/proc/${pid}/clear_refs`, "5");
}

/** Which store the coordinator runs on (`tributary serve --store`). */
type StoreKind = "file" | "jetstream";

interface RoundRow {
  readonly store: StoreKind;
  readonly n: number;
  /** Merge workers attached. */
  readonly workers: number;
  readonly mb: number;
  readonly uploadS: number;
  readonly mbps: number;
  /** The raw server's throughput: the mean of its upload times before and after the coordinator's. */
  readonly rawMbps: number;
  readonly rawBeforeMbps: number;
  readonly rawAfterMbps: number;
  readonly ackToBroadcastS: number;
  /** CPU seconds of the coordinator process (all its threads) from the first byte to the last ack. */
  readonly cpuS: number;
  /** CPU seconds of the raw server over one round of uploads (the mean of before and after). */
  readonly rawCpuS: number;
  /** CPU seconds of the uploading clients (this process) over the coordinator's uploads and over the raw server's. */
  readonly clientCpuS: number;
  readonly rawClientCpuS: number;
  /** Coordinator peak RSS up to the last ack (the uploads). */
  readonly uploadPeakMb: number;
  /** Its RSS at the last ack. */
  readonly ackRssMb: number;
  /** Its peak RSS from the last ack to the broadcast (the round merge). */
  readonly mergePeakMb: number;
}

/** Starts `count` merge workers on `natsUrl`, each merging one module at a time. */
async function startWorkers(count: number, natsUrl: string, work: string): Promise<ChildProcess[]> {
  const workers: ChildProcess[] = [];
  for (let i = 0; i < count; i++) {
    const w = spawn(
      process.execPath,
      [
        join(root, "server/bin/tributary.mjs"),
        "worker",
        "--nats-url",
        natsUrl,
        "--id",
        `bench-worker-${i + 1}`,
        "--threads",
        "1",
        "--cache-dir",
        join(work, `worker-${i + 1}`),
      ],
      { env: { ...process.env, TRIBUTARY_LOG: "info" }, stdio: ["ignore", "pipe", "pipe"] },
    );
    workers.push(w);
    await waitForLine(w, /"msg":"merge worker attached"/);
    // TRIBUTARY_BENCH_WORKER_LOG=FILE keeps the workers' log lines (each task's fetch and merge).
    const keep = process.env.TRIBUTARY_BENCH_WORKER_LOG;
    if (keep !== undefined) {
      const file = createWriteStream(keep, { flags: "a" });
      w.stdout?.pipe(file);
      w.stderr?.pipe(file);
    } else {
      w.stdout?.resume();
      w.stderr?.resume();
    }
  }
  return workers;
}

async function runOnce(
  n: number,
  store: StoreKind,
  workerCount: number,
  payloads: Payload[],
  work: string,
  rawWindows: boolean,
): Promise<RoundRow> {
  const nats = await startNatsServer({ jetstream: true });
  const dataDir = await mkdtemp(join(work, `data-${store}-${n}-`));
  const operatorToken = "trb_bench-operator-token-0123456789";
  // TRIBUTARY_BENCH_PROFILE=DIR writes the coordinator's CPU profile there (chrome://inspect opens it).
  const profile = process.env.TRIBUTARY_BENCH_PROFILE;
  const coordinator = spawn(
    process.execPath,
    [
      ...(profile !== undefined ? ["--cpu-prof", "--cpu-prof-dir", profile] : []),
      join(root, "server/bin/tributary.mjs"),
      "serve",
      "--data-dir",
      dataDir,
      "--port",
      "0",
      "--nats-url",
      nats.url,
      "--store",
      store,
    ],
    {
      env: {
        ...process.env,
        TRIBUTARY_OPERATOR_TOKEN: operatorToken,
        TRIBUTARY_LOG: process.env.TRIBUTARY_BENCH_LOG ?? "warn",
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  const raw = spawn(process.execPath, ["--import", "tsx", join(root, "bench/raw-grpc-server.ts")], {
    cwd: root,
    env: { ...process.env, TRIBUTARY_BENCH_RAW_WINDOWS: rawWindows ? "1" : "0" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let workers: ChildProcess[] = [];
  try {
    const [, address] = await waitForLine(coordinator, /listening on (\S+)/);
    // Keep draining its output (a full pipe would stall it); TRIBUTARY_BENCH_LOG=info shows it.
    if (process.env.TRIBUTARY_BENCH_LOG !== undefined) coordinator.stderr?.pipe(process.stderr);
    else coordinator.stderr?.resume();
    coordinator.stdout?.resume();
    const client = makeClient(ClientService, address, grpc.credentials.createInsecure());
    const operator = makeClient(OperatorService, address, grpc.credentials.createInsecure());
    const md = bearer(operatorToken);
    workers = await startWorkers(workerCount, nats.url, work);
    for (;;) {
      const st = (await call(
        operator.getStatus,
        operator,
        create(GetStatusRequestSchema),
        md,
      )) as GetStatusResponse;
      if (st.mergeWorkers.length === workerCount) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const federationId = `bench-${n}`;
    await call(
      operator.createFederation,
      operator,
      create(CreateFederationRequestSchema, {
        federationId,
        schema: {
          baseModelId: "synthetic/tiny-llama",
          modules: llama3QV().map((m) => ({ name: m.name, dIn: m.dIn, dOut: m.dOut, maxRank: 16 })),
          allowedDtypes: [Dtype.F32],
        },
        merge: { method: "from", rank: 16 },
        policy: { minClients: n, quorum: n, deadline: durationFromMs(600_000) },
      }),
      md,
    );
    const tokens: string[] = [];
    for (let i = 0; i < n; i++) {
      const res = (await call(
        operator.enrollClient,
        operator,
        create(EnrollClientRequestSchema, { federationId, clientId: `c${i}` }),
        md,
      )) as EnrollClientResponse;
      tokens.push(res.token);
      await call(client.join, client, create(JoinRequestSchema, { federationId }), bearer(res.token));
    }
    const watch = watchResults({ servers: nats.url, federationId });
    const announced = watch[Symbol.asyncIterator]().next();
    const total = payloads.slice(0, n).reduce((s, p) => s + p.bytes.length, 0);
    // The reference: the same bytes, the same client code, a bare server, just
    // before and just after the coordinator's uploads (the machine drifts),
    // after one untimed upload that warms the client code up.
    const [, rawPort] = await waitForLine(raw, /port (\d+)/);
    const rawClient = makeClient(ClientService, `127.0.0.1:${rawPort}`, grpc.credentials.createInsecure());
    await timedUploads(rawClient, raw.pid!, tokens.slice(0, 1), federationId, payloads);
    const rawBefore = await timedUploads(rawClient, raw.pid!, tokens, federationId, payloads);
    const coordinatorUploads = await timedUploads(client, coordinator.pid!, tokens, federationId, payloads);
    const tAck = performance.now();
    const atAck = await rssMb(coordinator.pid!);
    await resetPeak(coordinator.pid!);
    await announced;
    const tBroadcast = performance.now();
    await watch.close();
    const merge = await rssMb(coordinator.pid!);
    client.close();
    operator.close();
    const rawAfter = await timedUploads(rawClient, raw.pid!, tokens, federationId, payloads);
    rawClient.close();
    const uploadS = coordinatorUploads.wallS;
    const mb = total / 1e6;
    const rawS = (rawBefore.wallS + rawAfter.wallS) / 2;
    return {
      store,
      n,
      workers: workerCount,
      mb,
      uploadS,
      mbps: mb / uploadS,
      rawMbps: mb / rawS,
      ackToBroadcastS: (tBroadcast - tAck) / 1000,
      rawBeforeMbps: mb / rawBefore.wallS,
      rawAfterMbps: mb / rawAfter.wallS,
      cpuS: coordinatorUploads.serverCpuS,
      rawCpuS: (rawBefore.serverCpuS + rawAfter.serverCpuS) / 2,
      clientCpuS: coordinatorUploads.clientCpuS,
      rawClientCpuS: (rawBefore.clientCpuS + rawAfter.clientCpuS) / 2,
      uploadPeakMb: atAck.peak,
      ackRssMb: atAck.now,
      mergePeakMb: merge.peak,
    };
  } finally {
    for (const w of workers) w.kill("SIGTERM");
    coordinator.kill("SIGTERM");
    raw.kill("SIGTERM");
    await new Promise((r) => coordinator.once("exit", r));
    await nats.close();
  }
}

/** Runs the round benchmark. */
export async function runRoundBench(args: string[]): Promise<void> {
  const ci = args.indexOf("--clients");
  const clients = ci >= 0 ? args[ci + 1].split(",").map(Number) : [8, 32];
  const si = args.indexOf("--store");
  const stores = (si >= 0 ? args[si + 1].split(",") : ["file"]) as StoreKind[];
  for (const s of stores) {
    if (s !== "file" && s !== "jetstream") throw new Error(`--store takes file and/or jetstream, not ${s}`);
  }
  const wi = args.indexOf("--workers");
  const workerCounts = wi >= 0 ? args[wi + 1].split(",").map(Number) : [0];
  if (workerCounts.some((w) => w > 0) && !stores.includes("jetstream")) {
    throw new Error(
      "--workers needs --store jetstream: merge workers read the updates from the JetStream store",
    );
  }
  const rawWindows = args.includes("--raw-windows");
  const ri = args.indexOf("--repeat");
  const repeat = ri >= 0 ? Number(args[ri + 1]) : 1;
  if (!Number.isInteger(repeat) || repeat < 1)
    throw new Error(`--repeat takes a whole number of runs ≥ 1, not ${args[ri + 1]}`);
  const work = await mkdtemp(join(tmpdir(), "tributary-round-bench-"));
  try {
    const max = Math.max(...clients);
    const payloads: Payload[] = [];
    for (let i = 0; i < max; i++) {
      const dir = join(work, `client-${i}`);
      await mkdir(dir, { recursive: true });
      await writeSyntheticAdapter(dir, {
        modules: llama3QV(),
        rank: 16,
        seed: i + 1,
        dtype: "F32",
        baseModel: "synthetic/tiny-llama",
      });
      payloads.push({
        configJson: await readFile(join(dir, "adapter_config.json"), "utf8"),
        bytes: new Uint8Array(await readFile(join(dir, "adapter_model.safetensors"))),
      });
      await rm(dir, { recursive: true });
    }
    console.error(`generated ${max} adapters of ${(payloads[0].bytes.length / 1e6).toFixed(1)} MB`);
    const rows: RoundRow[] = [];
    const medians: string[] = [];
    for (const store of stores)
      for (const n of clients)
        for (const w of store === "jetstream" ? workerCounts : [0]) {
          const ratios: number[] = [];
          for (let k = 0; k < repeat; k++) {
            const row = await runOnce(n, store, w, payloads, work, rawWindows);
            rows.push(row);
            ratios.push(row.mbps / row.rawMbps);
            console.error(
              `${store} store, ${w} worker(s), n=${n}: ${row.mb.toFixed(0)} MB in ${row.uploadS.toFixed(2)} s = ${row.mbps.toFixed(0)} MB/s (raw grpc-js ${row.rawMbps.toFixed(0)} MB/s: ${row.rawBeforeMbps.toFixed(0)} before, ${row.rawAfterMbps.toFixed(0)} after), last ack → broadcast ${row.ackToBroadcastS.toFixed(2)} s, CPU ${row.cpuS.toFixed(1)} s (raw ${row.rawCpuS.toFixed(1)} s; clients ${row.clientCpuS.toFixed(1)} s, ${row.rawClientCpuS.toFixed(1)} s with raw), peak RSS ${row.uploadPeakMb.toFixed(0)} MB uploading, ${row.mergePeakMb.toFixed(0)} MB merging (${row.ackRssMb.toFixed(0)} MB at the last ack)`,
            );
          }
          const sorted = [...ratios].sort((a, b) => a - b);
          medians.push(
            `${store} store, ${w} worker(s), n=${n}: median ratio ${median(ratios).toFixed(2)} over ${ratios.length} run(s) (${sorted.map((r) => r.toFixed(2)).join(", ")})`,
          );
        }
    const table = [
      "| store | workers | n | uploaded (MB) | upload wall (s) | coordinator MB/s | raw grpc-js MB/s | raw before / after (MB/s) | ratio | server CPU (s) | raw server CPU (s) | clients' CPU (s) | last ack → broadcast (s) | peak RSS uploading (MB) | RSS at last ack (MB) | peak RSS merging (MB) |",
      "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
      ...rows.map(
        (r) =>
          `| ${r.store} | ${r.workers} | ${r.n} | ${r.mb.toFixed(0)} | ${r.uploadS.toFixed(2)} | ${r.mbps.toFixed(0)} | ${r.rawMbps.toFixed(0)} | ${r.rawBeforeMbps.toFixed(0)} / ${r.rawAfterMbps.toFixed(0)} | ${(r.mbps / r.rawMbps).toFixed(2)} | ${r.cpuS.toFixed(1)} | ${r.rawCpuS.toFixed(1)} | ${r.clientCpuS.toFixed(1)} / ${r.rawClientCpuS.toFixed(1)} | ${r.ackToBroadcastS.toFixed(2)} | ${r.uploadPeakMb.toFixed(0)} | ${r.ackRssMb.toFixed(0)} | ${r.mergePeakMb.toFixed(0)} |`,
      ),
    ].join("\n");
    publishTable("round", table);
    for (const line of medians) console.error(line);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
