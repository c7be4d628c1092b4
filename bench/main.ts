/**
 * `npm run bench -- <name> [options]`: runs one benchmark and prints a
 * Markdown table for BENCHMARKS.md (also written to `.bench-out/`).
 */
import { runCliBench } from "./cli-bench.ts";
import { runFailoverBench } from "./failover-bench.ts";
import { runHostileBench } from "./hostile-bench.ts";
import { runLinalgBench } from "./linalg-bench.ts";
import { runMergeBench } from "./merge-bench.ts";
import { runRankCollapseBench } from "./rank-collapse-bench.ts";
import { runRobustBench } from "./robust-bench.ts";
import { runRoundBench } from "./round-bench.ts";
import { runScaleBench } from "./scale-bench.ts";

const [name, ...rest] = process.argv.slice(2);
const benches: Record<string, (args: string[]) => Promise<void>> = {
  cli: runCliBench,
  failover: runFailoverBench,
  hostile: runHostileBench,
  linalg: runLinalgBench,
  merge: runMergeBench,
  "rank-collapse": runRankCollapseBench,
  robust: runRobustBench,
  round: runRoundBench,
  scale: runScaleBench,
};
const run = name === undefined ? undefined : benches[name];
if (run === undefined) {
  console.error(`usage: npm run bench -- <${Object.keys(benches).join("|")}> [options]`);
  process.exit(2);
}
await run(rest);
