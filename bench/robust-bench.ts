/**
 * `npm run bench -- robust [--clients 8] [--dim 1024] [--rank 16] [--factor 100]`:
 * one client of a synthetic module (`dim × dim`, rank 16) scales its update
 * ×`factor`. Reported for FroM without a bound, FroM with the norm bound
 * (3 × the median client norm, clipped and rejected), and the geometric
 * median: the attacker's weight, and the distance of the merged task vector
 * from the honest clients' FroM merge (the reference, computed in the same
 * run) relative to that merge's norm; also each merge's time. Dense
 * `dim × dim` products are formed only here, to measure.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { selectBackend } from "../server/src/compute/backend.ts";
import { mergeModule } from "../server/src/merge/engine.ts";
import { type MergeOptions, resolveOptions } from "../server/src/merge/options.ts";
import { denseOfMerged } from "../server/src/merge/testing/dense-of.ts";
import { randomModuleGroup } from "../server/src/merge/testing/random-modules.ts";
import type { ModuleGroup } from "../server/src/merge/types.ts";

const root = new URL("..", import.meta.url).pathname;

function relDistance(a: Float64Array, b: Float64Array): number {
  let d = 0;
  let n = 0;
  for (let i = 0; i < a.length; i++) {
    d += (a[i] - b[i]) ** 2;
    n += b[i] ** 2;
  }
  return Math.sqrt(d / n);
}

/** Runs the robustness benchmark and prints a Markdown table. */
export async function runRobustBench(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      clients: { type: "string", default: "8" },
      dim: { type: "string", default: "1024" },
      rank: { type: "string", default: "16" },
      factor: { type: "string", default: "100" },
    },
  });
  const n = Number(values.clients);
  const dim = Number(values.dim);
  const rank = Number(values.rank);
  const factor = Number(values.factor);
  const backend = await selectBackend();
  const honest = randomModuleGroup({
    seed: 7,
    name: "model.layers.0.self_attn.q_proj",
    dOut: dim,
    dIn: dim,
    ranks: new Array(n).fill(rank),
    scalings: new Array(n).fill(2),
  });
  const attacked: ModuleGroup = {
    ...honest,
    clients: honest.clients.map((c, i) => (i === 0 ? { ...c, scaling: c.scaling * factor } : c)),
  };
  const reference = mergeModule(
    { ...honest, clients: honest.clients.slice(1) },
    resolveOptions({ method: "from", rank }),
  );
  const refDense = denseOfMerged(reference.merged, dim, dim);
  const cases: [string, Partial<MergeOptions> & { method: string }][] = [
    ["FroM, no bound", { method: "from", rank }],
    [
      "FroM, bound 3 × median norm, clip",
      { method: "from", rank, normBoundMedian: 3, normBoundAction: "clip" },
    ],
    [
      "FroM, bound 3 × median norm, reject",
      { method: "from", rank, normBoundMedian: 3, normBoundAction: "reject" },
    ],
    ["FedAvg, no bound", { method: "fedavg", rank }],
    ["geometric median", { method: "median", rank }],
  ];
  const rows: string[] = [];
  for (const [label, partial] of cases) {
    const t0 = performance.now();
    const got = mergeModule(attacked, resolveOptions(partial));
    const ms = performance.now() - t0;
    const dist = relDistance(denseOfMerged(got.merged, dim, dim), refDense);
    rows.push(`| ${label} | ${got.report.weights[0].toFixed(4)} | ${dist.toFixed(4)} | ${ms.toFixed(0)} |`);
    console.error(
      `${label}: attacker weight ${got.report.weights[0].toFixed(4)}, distance ${dist.toFixed(4)}`,
    );
  }
  const table = [
    `One of ${n} clients scales its update ×${factor}; module ${dim}×${dim}, rank ${rank}, ${backend.name}:`,
    "",
    "| merge | attacker's weight | ‖M − M_honest‖ / ‖M_honest‖ | time (ms) |",
    "|---|---|---|---|",
    ...rows,
  ].join("\n");
  console.log(table);
  mkdirSync(join(root, ".bench-out"), { recursive: true });
  writeFileSync(join(root, ".bench-out/robust.md"), `${table}\n`);
}
