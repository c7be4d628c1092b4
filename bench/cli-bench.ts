/**
 * `npm run bench -- cli [--runs 15]`: start-up time of the commands a Python
 * trainer calls several times a round, each run as a fresh process the way a
 * shell script starts it. References measured in the same run: a bare
 * `node -e ""` (Node's own start-up) and the client CLI run from source under
 * tsx (how it started before the compiled build). Reports the median and the
 * slowest run of each, and the ratio of the median to Node's own.
 *
 * Options: --runs N (default 15)
 */
import { spawnSync } from "node:child_process";
import { parseArgs } from "node:util";
import { publishTable } from "./bench-output.ts";

const root = new URL("..", import.meta.url).pathname;

interface Case {
  readonly label: string;
  readonly args: readonly string[];
}

const CASES: readonly Case[] = [
  { label: 'node -e "" (reference: Node start-up)', args: ["-e", ""] },
  {
    label: "tributary-client --help (compiled)",
    args: ["client-sdk/dist/bin/tributary-client.js", "--help"],
  },
  {
    label: "tributary-client status, no coordinator (compiled)",
    args: [
      "client-sdk/dist/bin/tributary-client.js",
      "status",
      "--coordinator",
      "127.0.0.1:1",
      "--federation",
      "x",
      "--token",
      "t",
      "--retries",
      "0",
      "--state",
      "/nonexistent/state.json",
    ],
  },
  { label: "tributary --help (compiled)", args: ["server/bin/tributary.mjs", "--help"] },
  {
    label: "tributary-client --help from source under tsx (reference: before the build)",
    args: ["--import", "tsx", "client-sdk/src/bin/tributary-client.ts", "--help"],
  },
];

function timeOnce(args: readonly string[]): number {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, args, {
    cwd: root,
    stdio: "ignore",
    env: { ...process.env, NODE_OPTIONS: "" },
  });
  const ms = performance.now() - t0;
  if (r.error !== undefined) throw r.error;
  return ms;
}

/** Runs the CLI start-up benchmark and prints a Markdown table. */
export async function runCliBench(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { runs: { type: "string", default: "15" } } });
  const runs = Number(values.runs);
  const rows: string[] = [];
  let nodeMedian = 0;
  for (const c of CASES) {
    timeOnce(c.args); // warm the file cache
    const times = Array.from({ length: runs }, () => timeOnce(c.args)).sort((a, b) => a - b);
    const median = times[Math.floor(times.length / 2)];
    if (nodeMedian === 0) nodeMedian = median;
    rows.push(
      `| ${c.label} | ${(median / 1000).toFixed(3)} | ${(times[times.length - 1] / 1000).toFixed(3)} | ${(median / nodeMedian).toFixed(1)}× |`,
    );
    console.error(`${c.label}: median ${median.toFixed(0)} ms`);
  }
  const table = [
    `CLI start-up, ${runs} runs each, Node ${process.version}:`,
    "",
    "| command | median (s) | slowest (s) | median / Node start-up |",
    "|---|---|---|---|",
    ...rows,
  ].join("\n");
  publishTable("cli", table);
}
