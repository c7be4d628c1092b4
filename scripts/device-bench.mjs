#!/usr/bin/env node
// The merge benchmark of the device check (scripts/device-check.sh), in plain
// JS over the compiled packages so it runs with nothing but `node`: FroM
// (exact, rank r) of n synthetic clients on Llama-3-8B-shaped q_proj/v_proj
// modules (4096×4096 and 4096→1024), on the backend named by
// TRIBUTARY_BACKEND, in a merge pool. Prints one JSON line:
//   {backend, adapter, linalg, threads, clients, modules, rank, mergeMs, perModuleMs, objective, solvers}
//
//   TRIBUTARY_BACKEND=webgpu node scripts/device-bench.mjs --clients 128 --modules 8 --rank 8 --threads 1
import { parseArgs } from "node:util";
import { createMergePool } from "../server/dist/compute/merge-pool.js";
import { resolveOptions } from "../server/dist/merge/options.js";
import { randomModuleGroup } from "../server/dist/merge/testing/random-modules.js";

const { values } = parseArgs({
  options: {
    clients: { type: "string", default: "128" },
    modules: { type: "string", default: "8" },
    rank: { type: "string", default: "8" },
    threads: { type: "string" },
  },
});
const n = Number(values.clients);
const modules = Number(values.modules);
const rank = Number(values.rank);
const shapes = Array.from({ length: modules }, (_, i) => {
  const layer = Math.floor(i / 2);
  return i % 2 === 0
    ? { name: `model.layers.${layer}.self_attn.q_proj`, dIn: 4096, dOut: 4096 }
    : { name: `model.layers.${layer}.self_attn.v_proj`, dIn: 4096, dOut: 1024 };
});
const pool = await createMergePool(values.threads === undefined ? {} : { threads: Number(values.threads) });
try {
  const opts = resolveOptions({ method: "from", rank });
  const ranks = new Array(n).fill(rank);
  let mergeMs = 0;
  let objective = 0;
  const solvers = new Set();
  const per = [];
  // Inputs are made before each module is timed (not part of the merge).
  for (const [i, shape] of shapes.entries()) {
    const group = randomModuleGroup({
      seed: 7 + i,
      name: shape.name,
      dIn: shape.dIn,
      dOut: shape.dOut,
      ranks,
    });
    const t0 = performance.now();
    const { result } = await pool.mergeModule(group, opts);
    const ms = performance.now() - t0;
    mergeMs += ms;
    per.push(Math.round(ms));
    objective += result.report.objective ?? Number.NaN;
    solvers.add(result.report.solver);
  }
  console.log(
    JSON.stringify({
      backend: pool.backend.name,
      adapter: pool.backend.adapter ?? null,
      linalg: pool.backend.linalg,
      threads: pool.threads,
      node: process.versions.node,
      clients: n,
      modules,
      rank,
      mergeMs: Math.round(mergeMs),
      perModuleMs: per,
      objective,
      solvers: [...solvers],
    }),
  );
} finally {
  await pool.close();
}
