/**
 * Runs the coordinator-free simulation from the command line and prints one
 * line per round and method, with timings (how the demo defaults were
 * chosen):
 *
 * ```sh
 * node --import tsx server/src/demo/training/run-simulation.ts --nodes 5 --rounds 10 --rank 8 --epochs 3 --skew 4
 * ```
 */
import { parseArgs } from "node:util";
import { selectBackend } from "../../compute/backend.ts";
import { trainBaseModel } from "./base-model.ts";
import { evaluate } from "./local-round.ts";
import { formatRow, simulateFederation } from "./simulation.ts";
import { createTask } from "./task.ts";

const { values } = parseArgs({
  options: {
    nodes: { type: "string", default: "5" },
    "classes-per-node": { type: "string", default: "2" },
    rounds: { type: "string", default: "10" },
    rank: { type: "string", default: "8" },
    epochs: { type: "string", default: "3" },
    skew: { type: "string", default: "1" },
    lr: { type: "string", default: "0.002" },
    seed: { type: "string", default: "1" },
  },
});
const num = (name: keyof typeof values): number => {
  const v = Number(values[name]);
  if (!Number.isFinite(v)) throw new RangeError(`--${name} must be a number, got ${values[name]}`);
  return v;
};

const backend = await selectBackend();
const t0 = performance.now();
const task = createTask({
  nodes: num("nodes"),
  classesPerNode: num("classes-per-node"),
  sizeSkew: num("skew"),
  seed: num("seed"),
});
const { model: base } = trainBaseModel(task, { seed: num("seed") });
const t1 = performance.now();
const pre = (await evaluate({ task: { ...task, globalTest: task.pretrain.test }, base, adapter: null }))
  .global;
const shifted = await evaluate({ task, base, adapter: null });
console.log(
  `backend ${backend.name}; task + base ${((t1 - t0) / 1000).toFixed(1)} s; base accuracy: pretraining ${(100 * pre).toFixed(1)}%, shifted ${(100 * shifted.global).toFixed(1)}%`,
);
console.log(`train samples per node: ${task.nodes.map((n) => n.train.n).join(", ")}`);
const rows = await simulateFederation({
  task,
  base,
  rounds: num("rounds"),
  methods: [{ method: "from" }, { method: "fedavg" }],
  rank: num("rank"),
  epochs: num("epochs"),
  learningRate: num("lr"),
  seed: num("seed"),
  onRound: (row) =>
    console.log(`${formatRow(row)} | train ${row.trainMs.toFixed(0)} ms, merge ${row.mergeMs.toFixed(0)} ms`),
});
const trainMs = rows.reduce((s, r) => s + r.trainMs, 0);
const nodeRounds = rows.filter((r) => r.trainMs > 0).length * task.nodes.length;
console.log(
  `total ${((performance.now() - t0) / 1000).toFixed(1)} s; local training ${(trainMs / nodeRounds).toFixed(0)} ms per node-round`,
);
