/**
 * Telemetry of a real round, asserted from what the OpenTelemetry SDK recorded.
 *
 * Why a child process: under ESM, `@grpc/grpc-js` is only instrumented when
 * the import-in-the-middle loader hook is registered and the SDK started
 * *before* anything imports it — that is what `node --import
 * ./server/telemetry.mjs` does for the coordinator. `scripts/run-tests.mjs`
 * runs every test file with nothing but `--import tsx`, and this file has
 * long imported grpc-js by the time it runs, so the round runs in a child
 * started with `--import ./test/telemetry/otel-preload.mjs` (the same
 * `otel-sdk.mjs` start-up as `server/telemetry.mjs`, plus an in-memory span
 * exporter and a pull metric reader). The child (`telemetry/record-round.ts`)
 * runs the round against a real nats-server and gRPC server, scrapes the
 * Prometheus endpoint over HTTP, and dumps spans, metrics, the scrape and the
 * log lines as JSON; the assertions are here. Without the hook the process
 * runs fine but records no gRPC span — the first test catches that.
 *
 * The last suite starts `tributary serve` itself under `server/telemetry.mjs`
 * and scrapes its `/metrics`.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { startServeTelemetry } from "../server/src/telemetry/serve-telemetry.ts";
import { MODULES, OPERATOR_TOKEN } from "./helpers/federation.ts";
import { startNatsServer, type TestNatsServer } from "./helpers/nats-server.ts";
import type { PointDump, RoundDump, SpanDump } from "./telemetry/record-round.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const SERVER = 1;
const CLIENT = 2;
const ERROR = 2;

/** The environment of a child: no OTLP endpoint of the caller's leaks in. */
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  for (const k of Object.keys(env)) if (k.startsWith("OTEL_")) delete env[k];
  return env;
}

function run(args: string[], timeoutMs: number): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, {
      cwd: ROOT,
      env: childEnv(),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("error", reject);
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe("telemetry of a real round (OpenTelemetry SDK in a child process)", () => {
  let dump: RoundDump;
  let dir: string;
  const spansNamed = (name: string) => dump.spans.filter((s) => s.name === name);
  const childrenOf = (parent: SpanDump, name?: string) =>
    dump.spans.filter((s) => s.parentSpanId === parent.spanId && (name === undefined || s.name === name));
  const points = (metric: string): PointDump[] => {
    const m = dump.metrics[metric];
    assert.ok(m !== undefined, `metric ${metric} recorded (have: ${Object.keys(dump.metrics).join(", ")})`);
    return m.points;
  };
  const point = (metric: string, attrs: Record<string, unknown>): PointDump => {
    const hit = points(metric).find((p) => Object.entries(attrs).every(([k, v]) => p.attributes[k] === v));
    assert.ok(hit !== undefined, `${metric} has a point with ${JSON.stringify(attrs)}`);
    return hit;
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tributary-otel-"));
    const out = join(dir, "dump.json");
    const { code, output } = await run(
      [
        "--import",
        "./test/telemetry/otel-preload.mjs",
        "--import",
        "tsx",
        "test/telemetry/record-round.ts",
        out,
      ],
      120_000,
    );
    assert.equal(code, 0, `the round under OpenTelemetry failed:\n${output}`);
    dump = JSON.parse(await readFile(out, "utf8")) as RoundDump;
  });
  after(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it("records a gRPC server span for every Join and SubmitUpdate (the ESM hook is registered)", () => {
    const joins = spansNamed("grpc.tributary.v1.ClientService/Join").filter((s) => s.kind === SERVER);
    const submits = spansNamed("grpc.tributary.v1.ClientService/SubmitUpdate").filter(
      (s) => s.kind === SERVER,
    );
    assert.equal(joins.length, 3, "one server span per Join");
    assert.equal(submits.length, 4, "one server span per SubmitUpdate (3 accepted, 1 refused)");
    assert.equal(submits.filter((s) => s.status === ERROR).length, 1);
    assert.equal(submits.find((s) => s.status === ERROR)?.attributes["rpc.grpc.status_code"], 3);
    // The client side is instrumented too, and the server spans continue its traces.
    for (const server of [...joins, ...submits]) {
      const parent = dump.spans.find((s) => s.spanId === server.parentSpanId);
      assert.equal(parent?.kind, CLIENT, `${server.name} continues a client span`);
      assert.equal(parent?.traceId, server.traceId);
    }
  });

  it("traces the round: open → updates (validation, store) → merge with a span per module → publish", () => {
    const [round] = spansNamed("tributary.round").filter((s) => s.attributes["tributary.round"] === 1);
    assert.ok(round !== undefined, "a span for round 1");
    assert.equal(round.parentSpanId, undefined, "the round span is a root span");
    assert.equal(round.attributes["tributary.federation"], dump.federationId);
    assert.equal(round.attributes["tributary.outcome"], "published");
    assert.equal(round.attributes["tributary.accepted_updates"], 3);
    assert.equal(round.attributes["tributary.stragglers"], 0);
    assert.deepEqual(round.events, ["quorum", "closed"]);

    const [open] = childrenOf(round, "tributary.round.open");
    assert.ok(open !== undefined, "round.open child");

    const updates = childrenOf(round, "tributary.update");
    assert.equal(updates.length, 4);
    const accepted = updates.filter((u) => u.attributes["tributary.result"] === "accepted");
    assert.equal(accepted.length, 3);
    const submitServerSpans = new Set(
      spansNamed("grpc.tributary.v1.ClientService/SubmitUpdate")
        .filter((s) => s.kind === SERVER)
        .map((s) => s.spanId),
    );
    for (const u of accepted) {
      const steps = childrenOf(u)
        .filter((s) => s.name.startsWith("tributary.update."))
        .sort((a, b) => a.startMs - b.startMs)
        .map((s) => s.name.slice("tributary.update.".length));
      assert.deepEqual(steps, ["validate", "upload", "store", "validate_content", "accept"], "update steps");
      const [store] = childrenOf(u, "tributary.update.store");
      assert.equal(childrenOf(store, "tributary.store.upload").length, 1, "the fsynced commit is traced");
      assert.ok(u.startMs >= open.startMs);
      assert.ok(
        u.links.some((l) => submitServerSpans.has(l.spanId)),
        "an update span links to its SubmitUpdate RPC span",
      );
    }
    const refused = updates.find((u) => u.attributes["tributary.result"] === "rejected");
    assert.equal(refused?.attributes["tributary.reason"], "InvalidUpdateError");
    assert.equal(refused?.status, ERROR);

    const [merge] = childrenOf(round, "tributary.merge");
    assert.ok(merge !== undefined, "merge child of the round");
    assert.equal(merge.attributes["tributary.method"], "from");
    assert.equal(merge.attributes["tributary.clients"], 3);
    const lastStored = Math.max(
      ...accepted.flatMap((u) => childrenOf(u, "tributary.update.store").map((s) => s.endMs)),
    );
    assert.ok(merge.startMs >= lastStored, "the merge starts after every update is stored");
    const modules = childrenOf(merge, "tributary.merge.module");
    assert.deepEqual(
      modules.map((m) => m.attributes["tributary.module"]).sort(),
      MODULES.map((m) => m.name).sort(),
    );
    for (const m of modules) {
      assert.equal(m.attributes["tributary.method"], "from");
      assert.equal(m.attributes["tributary.rank"], 4);
      assert.equal(typeof m.attributes["tributary.iterations"], "number");
      assert.equal(typeof m.attributes["tributary.objective"], "number");
      assert.ok(m.startMs >= merge.startMs - 1 && m.endMs <= merge.endMs + 1, "module span inside the merge");
    }
    assert.equal(childrenOf(merge, "tributary.store.adapter").length, 1, "the stored result is traced");

    const [publish] = childrenOf(round, "tributary.round.publish");
    assert.ok(publish !== undefined, "publish child of the round");
    assert.notEqual(publish.status, ERROR);
    assert.ok(publish.startMs >= merge.endMs);
    // Every round span and its descendants share one trace.
    for (const s of [open, ...updates, merge, ...modules, publish]) assert.equal(s.traceId, round.traceId);
  });

  it("counts rounds, updates, bytes, merge weights and latencies with bounded attributes", () => {
    const fed = { federation: dump.federationId };
    assert.equal(point("tributary_rounds_total", { ...fed, outcome: "published" }).value, 1);
    assert.equal(point("tributary_round_duration_seconds", { ...fed, outcome: "published" }).value, 1);
    assert.equal(point("tributary_updates_total", { ...fed, result: "accepted" }).value, 3);
    assert.equal(
      point("tributary_updates_total", { ...fed, result: "rejected", reason: "InvalidUpdateError" }).value,
      1,
    );
    assert.equal(point("tributary_update_bytes_total", fed).value, dump.sentBytes);
    assert.ok(point("tributary_upload_duration_seconds", fed).value >= 3);
    assert.equal(point("tributary_time_to_quorum_seconds", fed).value, 1);
    const stragglers = point("tributary_stragglers", fed);
    assert.deepEqual([stragglers.value, stragglers.sum], [1, 0]);
    assert.equal(
      point("tributary_merge_duration_seconds", { ...fed, method: "from", outcome: "ok" }).value,
      1,
    );
    const weights = point("tributary_merge_weight", { ...fed, method: "from" });
    assert.equal(weights.value, 3, "one merge weight per client");
    assert.ok(Math.abs((weights.sum ?? 0) - 1) < 1e-9, "FroM weights sum to 1");
    assert.equal(point("tributary_nats_publish_duration_seconds", { ...fed, outcome: "ok" }).value, 1);
    for (const operation of ["journal", "upload", "adapter"]) {
      assert.ok(point("tributary_store_fsync_duration_seconds", { operation }).value >= 1, operation);
    }
    assert.equal(point("tributary_active_clients", fed).value, 3);
    // No unbounded label: no round number, client or update id.
    const allowed = new Set(["federation", "outcome", "result", "reason", "method", "solver", "operation"]);
    for (const [name, m] of Object.entries(dump.metrics)) {
      for (const p of m.points) {
        for (const k of Object.keys(p.attributes)) assert.ok(allowed.has(k), `${name} has attribute ${k}`);
      }
    }
  });

  it("serves the metrics over HTTP in the Prometheus format", () => {
    assert.equal(dump.scrape.status, 200);
    assert.match(dump.scrape.contentType, /^text\/plain/);
    const line = (metric: string, labels: string[], value: string) => {
      const m = dump.scrape.body
        .split("\n")
        .find(
          (l) => l.startsWith(`${metric}{`) && labels.every((x) => l.includes(x)) && l.endsWith(` ${value}`),
        );
      assert.ok(m !== undefined, `scrape has ${metric}{${labels.join(",")}} ${value}\n${dump.scrape.body}`);
    };
    const fed = `federation="${dump.federationId}"`;
    line("tributary_rounds_total", [fed, 'outcome="published"'], "1");
    line("tributary_updates_total", [fed, 'result="accepted"'], "3");
    line("tributary_merge_weight_count", [fed, 'method="from"'], "3");
    line("tributary_active_clients", [fed], "3");
    assert.match(dump.scrape.body, /^target_info\{.*service_name="tributary-coordinator"/m);
  });

  it("writes JSON log lines with the active trace and span ids, and no token", () => {
    const [round] = spansNamed("tributary.round").filter((s) => s.attributes["tributary.round"] === 1);
    const updateSpans = new Set(spansNamed("tributary.update").map((s) => s.spanId));
    const accepted = dump.logs.filter((l) => l.msg === "update accepted");
    assert.equal(accepted.length, 3);
    for (const l of accepted) {
      assert.equal(l.trace_id, round.traceId, "an update's log line is in its round's trace");
      assert.ok(updateSpans.has(String(l.span_id)));
      assert.equal(l.level, "info");
    }
    const merging = dump.logs.find((l) => l.msg === "merging round");
    assert.equal(merging?.trace_id, round.traceId);
    const text = JSON.stringify(dump.logs);
    for (const token of dump.tokens) assert.ok(!text.includes(token), "a token was logged");
  });
});

describe("tributary serve and telemetry", () => {
  let nats: TestNatsServer;
  let dir: string;
  before(async () => {
    nats = await startNatsServer({ jetstream: true });
    dir = await mkdtemp(join(tmpdir(), "tributary-serve-otel-"));
  });
  after(async () => {
    await nats?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it("without the preload, says how to turn telemetry on", async () => {
    const lines: string[] = [];
    const log = { info: (m: string) => lines.push(m), warn: () => {}, error: () => {} };
    const t = await startServeTelemetry({ metricsPort: 9464, metricsHost: "127.0.0.1", log });
    assert.equal(t.enabled, false);
    assert.equal(t.metricsUrl, undefined);
    assert.equal(lines.length, 1);
    assert.match(lines[0], /--import \.\/server\/telemetry\.mjs/);
    await t.close();
  });

  it("under `node --import ./server/telemetry.mjs`, serves /metrics on --metrics-port", async () => {
    const port = await freePort();
    const args = ["--import", "./server/telemetry.mjs", "server/bin/tributary.mjs", "serve"];
    args.push("--data-dir", join(dir, "data"), "--port", "0", "--nats-url", nats.url, "--threads", "0");
    args.push("--metrics-port", String(port), "--drain", "0");
    const child: ChildProcess = spawn(process.execPath, args, {
      cwd: ROOT,
      env: childEnv({
        TRIBUTARY_OPERATOR_TOKEN: OPERATOR_TOKEN,
        TRIBUTARY_LOG: "info",
        TRIBUTARY_UI_PORT: "off",
      }),
      stdio: ["ignore", "ignore", "pipe"],
    });
    let err = "";
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no metrics line within 60 s:\n${err}`)), 60_000);
        child.stderr!.on("data", (d: Buffer) => {
          err += d.toString();
          const m = /^ {2}metrics: (\S+)$/m.exec(err);
          if (m !== null) {
            clearTimeout(timer);
            resolve(m[1]);
          }
        });
        void exited.then((code) => reject(new Error(`serve exited (${code}):\n${err}`)));
      });
      assert.equal(url, `http://127.0.0.1:${port}/metrics`);
      const res = await fetch(url);
      assert.equal(res.status, 200);
      const scrape = await res.text();
      assert.match(scrape, /^target_info\{.*service_name="tributary-coordinator"/m);
      // The unauthenticated scrape carries no command line (it could hold a --nats-url password).
      assert.doesNotMatch(scrape, /command|--nats-url|--data-dir/);
      assert.match(err, /"msg":"telemetry on"/);
      assert.equal((await fetch(`http://127.0.0.1:${port}/`)).status, 404);
    } finally {
      child.kill("SIGTERM");
    }
    assert.equal(await exited, 0, err);
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
