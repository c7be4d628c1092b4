/**
 * `npm run bench -- merge`: the synthetic "Llama-3-8B q_proj+v_proj, r=16"
 * adapter set (64 modules), n = 8, 32, 128 clients. Each case runs in its own
 * process for an honest peak RSS. The paper's dense Algorithm 1 runs on the
 * first two modules (one q_proj, one v_proj) in the same run, next to the
 * factored solvers on the same modules, for the time ratio and objectives.
 *
 * Options: --clients 8,32,128  --quick (n = 8 only, fewer modules)
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { publishTable } from "./bench-output.ts";
import type { CaseResult, CaseSpec } from "./merge-case.ts";

const root = new URL("..", import.meta.url).pathname;

function runCase(spec: CaseSpec): CaseResult {
  const res = spawnSync(
    process.execPath,
    ["--import", "tsx", join(root, "bench/merge-case.ts"), JSON.stringify(spec)],
    {
      cwd: root,
      encoding: "utf8",
      maxBuffer: 64 << 20,
    },
  );
  if (res.status !== 0) throw new Error(`case ${spec.label} n=${spec.clients} failed:\n${res.stderr}`);
  const line = res.stdout.trim().split("\n").pop() ?? "";
  return JSON.parse(line) as CaseResult;
}

interface Row {
  readonly n: number;
  readonly label: string;
  readonly modules: number;
  readonly wallS: number;
  readonly mergeS: number;
  readonly perModuleMs: number;
  readonly rssMb: number;
  readonly objective: string;
  readonly iterations: string;
  readonly solver: string;
  readonly backend: string;
}

function summarise(r: CaseResult): Row {
  const objs = r.modules.map((m) => m.objective).filter((x): x is number => x !== null);
  const its = r.modules.map((m) => m.iterations);
  return {
    n: r.spec.clients,
    label: r.spec.label,
    modules: r.modules.length,
    wallS: r.wallMs / 1000,
    mergeS: r.mergeMs / 1000,
    perModuleMs: r.modules.reduce((s, m) => s + m.ms, 0) / r.modules.length,
    rssMb: r.peakRssMb,
    objective:
      objs.length === 0
        ? "–"
        : objs
            .map((o) => o.toPrecision(6))
            .slice(0, 2)
            .join(" / "),
    iterations: its.length === 0 ? "–" : `${Math.min(...its)}–${Math.max(...its)}`,
    solver: [...new Set(r.modules.map((m) => m.solver))].join(","),
    backend: `${r.backend}×${r.threads || 1}`,
  };
}

/** Runs the merge benchmark. */
export async function runMergeBench(args: string[]): Promise<void> {
  const quick = args.includes("--quick");
  const ci = args.indexOf("--clients");
  const clients = ci >= 0 ? args[ci + 1].split(",").map(Number) : quick ? [8] : [8, 32, 128];
  const all = quick ? 8 : 64;
  const rows: Row[] = [];
  const push = (spec: CaseSpec) => {
    const r = runCase(spec);
    const row = summarise(r);
    rows.push(row);
    console.error(
      `n=${row.n} ${row.label}: merge ${row.mergeS.toFixed(2)} s (process ${row.wallS.toFixed(2)} s) over ${row.modules} modules, ${row.perModuleMs.toFixed(0)} ms/module, peak RSS ${row.rssMb.toFixed(0)} MB [${row.solver}; ${row.backend}]`,
    );
  };
  for (const n of clients) {
    const few = 2;
    push({ clients: n, method: "from", label: "FroM exact r16", options: {}, modules: all, rank: 16 });
    push({
      clients: n,
      method: "from",
      label: "FroM ALS r16",
      options: { solver: "als" },
      modules: all,
      rank: 16,
    });
    push({
      clients: n,
      method: "fedavg",
      label: "FedAvg (products) r16",
      options: {},
      modules: all,
      rank: 16,
    });
    push({
      clients: n,
      method: "fedavg-factors",
      label: "FedAvg (factors)",
      options: {},
      modules: all,
      rank: 16,
    });
    push({
      clients: n,
      method: "task-arithmetic",
      label: "task arithmetic r16",
      options: {},
      modules: all,
      rank: 16,
    });
    push({
      clients: n,
      method: "fr",
      label: "FR-Merging r16",
      options: {},
      modules: n <= 32 ? all : 8,
      rank: 16,
    });
    // LoRE's SVTs are certified partial ones where they can be (a few products per
    // client and iteration); its frame is still O(R³) in R = n·r, so n = 128 is left out.
    if (n <= 32) push({ clients: n, method: "lore", label: "LoRE r16", options: {}, modules: 8, rank: 16 });
    push({ clients: n, method: "ties", label: "TIES r16", options: {}, modules: few, rank: 16 });
    push({ clients: n, method: "dare", label: "DARE r16", options: {}, modules: few, rank: 16 });
    // Same two modules: factored exact, factored ALS, and the paper's dense Algorithm 1.
    push({
      clients: n,
      method: "from",
      label: "FroM exact r16 (2 modules)",
      options: {},
      modules: few,
      rank: 16,
      threads: 0,
    });
    push({
      clients: n,
      method: "from",
      label: "FroM ALS r16 (2 modules)",
      options: { solver: "als" },
      modules: few,
      rank: 16,
      threads: 0,
    });
    if (n <= 32) {
      push({
        clients: n,
        method: "from",
        label: "paper dense Alg. 1 r16 (2 modules)",
        options: {},
        modules: few,
        rank: 16,
        dense: true,
      });
    }
  }
  const header =
    "| n | method | modules | merge (s) | process wall (s) | per module (ms) | peak RSS (MB) | objective (first 2 modules) | iterations | solver | backend×threads |\n|---|---|---|---|---|---|---|---|---|---|---|";
  const lines = rows.map(
    (r) =>
      `| ${r.n} | ${r.label} | ${r.modules} | ${r.mergeS.toFixed(2)} | ${r.wallS.toFixed(2)} | ${r.perModuleMs.toFixed(0)} | ${r.rssMb.toFixed(0)} | ${r.objective} | ${r.iterations} | ${r.solver} | ${r.backend} |`,
  );
  const table = [header, ...lines].join("\n");
  publishTable("merge", table);
}
