import { parseArgs } from "node:util";
import { selectBackend } from "../server/src/compute/backend.ts";
import { mergeModule } from "../server/src/merge/engine.ts";
import { type MergeOptions, resolveOptions } from "../server/src/merge/options.ts";
import { denseOfMerged } from "../server/src/merge/testing/dense-of.ts";
import { randomModuleGroup } from "../server/src/merge/testing/random-modules.ts";
import type { ModuleGroup } from "../server/src/merge/types.ts";
import { publishTable } from "./bench-output.ts";

const _root = new URL("..", import.meta.url).pathname;

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
  publishTable("robust", table);
}
