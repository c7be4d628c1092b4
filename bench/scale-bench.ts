/**
 * `npm run bench -- scale`: how the merge grows with the number of clients.
 *
 * 1. The engine on one Llama-3-8B `q_proj` (4096 × 4096) at r = 8, FroM
 *    exact, n = 8/32/128/256 (median of 3 runs after a warm-up): the Gram route (`core` or `subspace`, the
 *    stacked `R × R` products, R = n r), the product-only `stream` route,
 *    and what the cost model picks (`auto`), each with its time, time per
 *    client, iterations and objective (relative to the Gram route's).
 * 2. `tributary merge` (the real CLI, inputs read lazily) of n synthetic
 *    8-module q/v adapters: wall time, merge time, time outside the merge
 *    (process and pool start, headers, output), and peak RSS (GNU time's
 *    maximum resident set); each row is the median of 3 runs.
 *
 * Options: --clients 8,32,128,256
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { selectBackend } from "../server/src/compute/backend.ts";
import { mergeModule } from "../server/src/merge/engine.ts";
import { resolveOptions } from "../server/src/merge/options.ts";
import { writeSyntheticAdapter } from "../server/src/peft/synthetic-adapter.ts";
import { publishTable } from "./bench-output.ts";
import { llama3QV, syntheticModule } from "./synthetic.ts";

const root = new URL("..", import.meta.url).pathname;

function engineRows(clients: readonly number[]): string[] {
  const shape = llama3QV()[0];
  const rows: string[] = [];
  for (const n of clients) {
    const group = syntheticModule(shape, n, 8, 1);
    // Median of 3 timed runs after an untimed one (JIT and backend warm-up).
    const run = (route: "auto" | "core" | "subspace" | "stream") => {
      const opts = resolveOptions({ method: "from", rank: 8, truncation: { route } });
      let r = mergeModule(group, opts);
      const ms: number[] = [];
      for (let i = 0; i < 3; i++) {
        const t0 = performance.now();
        r = mergeModule(group, opts);
        ms.push(performance.now() - t0);
      }
      return { ms: ms.sort((a, b) => a - b)[1], r };
    };
    const gramRoute = n * 8 <= 160 ? "core" : "subspace";
    const gram = run(gramRoute);
    const ref = gram.r.report.objective ?? Number.NaN;
    for (const [label, res] of [
      [`Gram (${gramRoute})`, gram],
      ["stream", run("stream")],
      ["auto", run("auto")],
    ] as const) {
      const obj = res.r.report.objective ?? Number.NaN;
      rows.push(
        `| ${n} | ${label} | ${res.r.report.solver} | ${res.ms.toFixed(0)} | ${(res.ms / n).toFixed(2)} | ${res.r.report.iterations} | ${((obj - ref) / ref).toExponential(1)} |`,
      );
      console.error(rows.at(-1));
    }
  }
  return rows;
}

interface CliRun {
  readonly wall: number;
  readonly merge: number;
  readonly rss: number;
}

/** One `tributary merge` of `dirs` under GNU time: wall and merge seconds, peak RSS in MB. */
function cliRun(dirs: readonly string[], out: string): CliRun {
  const t0 = performance.now();
  const res = spawnSync(
    "/usr/bin/time",
    [
      "-f",
      "maxrss_kb=%M",
      process.execPath,
      join(root, "server/bin/tributary.mjs"),
      "merge",
      "--method",
      "from",
      "--rank",
      "8",
      "--quiet",
      "--out",
      out,
      ...dirs,
    ],
    { encoding: "utf8" },
  );
  const wall = (performance.now() - t0) / 1000;
  if (res.status !== 0) throw new Error(`tributary merge n=${dirs.length} failed:\n${res.stderr}`);
  const merge =
    Number(/merge ([\d.]+) (ms|s)/.exec(res.stdout)?.[1] ?? Number.NaN) /
    (/merge [\d.]+ ms/.test(res.stdout) ? 1000 : 1);
  const rss = Number(/maxrss_kb=(\d+)/.exec(res.stderr)?.[1] ?? 0) / 1024;
  return { wall, merge, rss };
}

async function cliRows(clients: readonly number[]): Promise<string[]> {
  const work = mkdtempSync(join(tmpdir(), "tributary-scale-"));
  const rows: string[] = [];
  try {
    const modules = llama3QV().slice(0, 8);
    const max = Math.max(...clients);
    const dirs: string[] = [];
    let bytes = 0;
    for (let i = 0; i < max; i++) {
      const dir = join(work, `c${i}`);
      await writeSyntheticAdapter(dir, {
        modules,
        rank: 8,
        seed: 100 + i,
        dtype: "F32",
        baseModel: "meta-llama/Meta-Llama-3-8B",
      });
      dirs.push(dir);
      if (i === 0) bytes = statSync(join(dir, "adapter_model.safetensors")).size;
    }
    for (const n of clients) {
      // Peak RSS moves by ±10 % between runs (when the collector runs): the median of 3.
      const runs = [0, 1, 2].map(() => cliRun(dirs.slice(0, n), join(work, `out-${n}`)));
      const med = (f: (r: CliRun) => number) => runs.map(f).sort((a, b) => a - b)[1];
      const wall = med((r) => r.wall);
      const merge = med((r) => r.merge);
      const rss = med((r) => r.rss);
      const gb = (n * bytes) / 1e9;
      rows.push(
        `| ${n} | ${(gb * 1000).toFixed(0)} MB | ${wall.toFixed(2)} | ${merge.toFixed(2)} | ${((merge * 1000) / n).toFixed(1)} | ${(wall - merge).toFixed(2)} | ${rss.toFixed(0)} (${runs.map((r) => r.rss.toFixed(0)).join(", ")}) |`,
      );
      console.error(rows.at(-1));
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return rows;
}

/** Runs the benchmark (see the module comment). */
export async function runScaleBench(args: string[]): Promise<void> {
  const ci = args.indexOf("--clients");
  const clients = ci >= 0 ? args[ci + 1].split(",").map(Number) : [8, 32, 128, 256];
  const backend = await selectBackend();
  const engine = engineRows(clients);
  const cli = await cliRows(clients);
  const table = [
    `Engine: FroM exact, one q_proj (4096 × 4096), r = 8, in-process (${backend.name}, decompositions ${backend.linalg}), Node ${process.versions.node}:`,
    "",
    "| n | route asked | route run | ms | ms per client | iterations | objective vs Gram route |",
    "|---|---|---|---|---|---|---|",
    ...engine,
    "",
    "`tributary merge --method from --rank 8` of n adapters (8 q/v modules of Llama-3-8B, r = 8, F32), 2 worker threads:",
    "",
    "| n | input | wall (s) | merge (s) | merge ms per client | outside the merge (s) | peak RSS (MB), median (runs) |",
    "|---|---|---|---|---|---|---|",
    ...cli,
  ].join("\n");
  publishTable("scale", table);
}
