/**
 * A federation simulated in one process, without a coordinator: every round
 * each node fine-tunes the current global adapter of each merge method on its
 * own data (`trainNode`), the adapters are merged with the real merge engine
 * (`mergeAdapterFiles`), and the merged adapter is evaluated on every node's
 * task. Methods run side by side from the same base and the same seeds.
 */
import { streamKey } from "../../merge/random.ts";
import type { AdapterFiles } from "./adapter-files.ts";
import type { BaseModel } from "./base-model.ts";
import { type LocalMergeOptions, mergeAdapterFiles } from "./local-merge.ts";
import { type Evaluation, evaluate, type TrainNodeResult, trainNode } from "./local-round.ts";
import type { Task } from "./task.ts";

/** Settings of a simulated federation. */
export interface SimulationOptions {
  readonly task: Task;
  readonly base: BaseModel;
  readonly rounds: number;
  /** Merge methods to run side by side, e.g. `[{ method: "from" }, { method: "fedavg" }]`. */
  readonly methods: readonly LocalMergeOptions[];
  readonly rank: number;
  readonly epochs: number;
  readonly seed: number;
  readonly learningRate?: number;
  /** Called after each method's merge of each round (for printing). */
  readonly onRound?: (row: RoundRow) => void;
}

/** One method's outcome in one round. */
export interface RoundRow {
  readonly round: number;
  readonly method: string;
  /** The merged adapter's accuracy on every node's task and globally. */
  readonly merged: Evaluation;
  /** Each node's own accuracy (its test split) after local training, before merging. */
  readonly local: number[];
  /** Wall time of the round's local training (all nodes) and of the merge, in ms. */
  readonly trainMs: number;
  readonly mergeMs: number;
  readonly adapter: AdapterFiles;
}

/**
 * Runs the simulation and returns one row per round and method.
 *
 * @example
 * const rows = await simulateFederation({ task, base, rounds: 3, methods: [{ method: "from" }, { method: "fedavg" }], rank: 4, epochs: 3, seed: 1 });
 */
export async function simulateFederation(o: SimulationOptions): Promise<RoundRow[]> {
  const rows: RoundRow[] = [];
  const globals = new Map<number, AdapterFiles | null>(o.methods.map((_, m) => [m, null]));
  let firstRound: TrainNodeResult[] | undefined;
  for (let round = 1; round <= o.rounds; round++) {
    for (const [m, method] of o.methods.entries()) {
      const t0 = performance.now();
      const results: TrainNodeResult[] = [];
      // Round 1 starts every method from nothing with the same seeds: train once.
      if (round === 1 && firstRound !== undefined) results.push(...firstRound);
      else {
        for (let node = 0; node < o.task.nodes.length; node++) {
          results.push(
            await trainNode({
              node,
              task: o.task,
              base: o.base,
              globalAdapter: globals.get(m) ?? null,
              rank: o.rank,
              epochs: o.epochs,
              seed: streamKey(o.seed, "round", round),
              ...(o.learningRate !== undefined ? { learningRate: o.learningRate } : {}),
            }),
          );
        }
        if (round === 1) firstRound = results;
      }
      const t1 = performance.now();
      const adapter = mergeAdapterFiles(
        results.map((r) => r.adapter),
        results.map((r) => r.samples),
        method,
      );
      const t2 = performance.now();
      globals.set(m, adapter);
      const row: RoundRow = {
        round,
        method: method.method,
        merged: await evaluate({ task: o.task, base: o.base, adapter }),
        local: results.map((r) => r.metrics.accuracy),
        trainMs: t1 - t0,
        mergeMs: t2 - t1,
        adapter,
      };
      rows.push(row);
      o.onRound?.(row);
    }
  }
  return rows;
}

/** One printable line: `round method | per-node accuracies | global`. */
export function formatRow(row: RoundRow): string {
  const pct = (x: number) => `${(100 * x).toFixed(1).padStart(5)}%`;
  return `round ${String(row.round).padStart(2)} ${row.method.padEnd(7)} | nodes ${row.merged.perNode
    .map(pct)
    .join(" ")} | global ${pct(row.merged.global)} | local own ${row.local.map(pct).join(" ")}`;
}
