/**
 * One benchmark case in its own process (so peak RSS is the case's own):
 * merges the synthetic Llama-3-8B q+v adapter set with one method, or runs
 * the paper's dense Algorithm 1 on a few modules, and prints one JSON line.
 *
 *   node --import tsx bench/merge-case.ts '{"clients":32,"method":"from","modules":64}'
 */
import { createMergePool } from "../server/src/compute/merge-pool.ts";
import type { MergeOptions } from "../server/src/merge/options.ts";
import { resolveOptions } from "../server/src/merge/options.ts";
import { denseAlgorithm1 } from "./dense-paper.ts";
import { llama3QV, syntheticModule } from "./synthetic.ts";

/** What the parent asks for. */
export interface CaseSpec {
  readonly clients: number;
  readonly method: string;
  readonly label: string;
  readonly options: Record<string, unknown>;
  /** How many modules of the 64 (taken alternately q, v, q, v, …). */
  readonly modules: number;
  readonly threads?: number;
  /** Run the dense paper implementation instead of the engine. */
  readonly dense?: boolean;
  readonly rank: number;
}

/** What a case reports. */
export interface CaseResult {
  readonly spec: CaseSpec;
  readonly backend: string;
  readonly threads: number;
  readonly wallMs: number;
  /** From the first module submitted to the last merged (pool already started). */
  readonly mergeMs: number;
  readonly peakRssMb: number;
  /** Per-module objective and iterations, in module order. */
  readonly modules: {
    name: string;
    objective: number | null;
    iterations: number;
    ms: number;
    solver: string;
  }[];
}

const spec = JSON.parse(process.argv[2] ?? "{}") as CaseSpec;
const shapes = llama3QV().slice(0, spec.modules);
const modules: CaseResult["modules"] = [];
let backend = "";
let mergeMs = 0;
let threads = 0;
const t0 = performance.now();
if (spec.dense === true) {
  const pool = await createMergePool({ threads: 0 });
  backend = pool.backend.name;
  for (const shape of shapes) {
    const group = syntheticModule(shape, spec.clients, 16, 1);
    const t = performance.now();
    const r = denseAlgorithm1(group, {
      k: 0.9,
      rank: spec.rank,
      sigma: 1,
      iters: Number(spec.options.iters ?? 100),
      tol: Number(spec.options.tol ?? 1e-6),
      seed: 0,
    });
    modules.push({
      name: shape.name,
      objective: r.loss,
      iterations: r.iterations,
      ms: performance.now() - t,
      solver: "dense-als",
    });
    mergeMs += performance.now() - t;
  }
} else {
  const pool = await createMergePool({ threads: spec.threads });
  backend = pool.backend.name;
  threads = pool.threads;
  const opts: MergeOptions = resolveOptions({
    ...(spec.options as Partial<MergeOptions>),
    method: spec.method,
    rank: spec.rank,
  });
  // Inputs are generated up front (as if already decoded from disk) and
  // excluded from the timing; the merge then streams them to the workers.
  const groups = shapes.map((shape) => syntheticModule(shape, spec.clients, 16, 1));
  let next = 0;
  const results = new Array<CaseResult["modules"][number]>(shapes.length);
  const lane = async () => {
    while (next < groups.length) {
      const i = next++;
      const { result, ms } = await pool.mergeModule(groups[i], opts);
      results[i] = {
        name: shapes[i].name,
        objective: result.report.objective,
        iterations: result.report.iterations,
        ms,
        solver: result.report.solver,
      };
    }
  };
  // One lane more than workers, so every worker always has the next module queued.
  const tm = performance.now();
  await Promise.all(Array.from({ length: Math.max(1, pool.threads) + 1 }, lane));
  mergeMs = performance.now() - tm;
  modules.push(...results);
  await pool.close();
}
const out: CaseResult = {
  spec,
  backend,
  threads,
  wallMs: performance.now() - t0,
  mergeMs: mergeMs || performance.now() - t0,
  peakRssMb: process.resourceUsage().maxRSS / 1024,
  modules,
};
console.log(JSON.stringify(out));
