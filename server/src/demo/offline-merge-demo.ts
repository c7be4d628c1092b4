/**
 * `npm run demo` (for now): writes a small federation's worth of PEFT client
 * adapters under `data/demo/` and merges them offline with `tributary merge`,
 * once per method, printing each summary. The coordinator-driven federation
 * replaces this once the gRPC service exists.
 */
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { main } from "../cli/main.ts";
import { llamaQV, writeSyntheticAdapter } from "../peft/synthetic-adapter.ts";

const root = join(new URL("../../../", import.meta.url).pathname, "data", "demo");
const clients = 8;
const modules = llamaQV(4, 1024);

await rm(root, { recursive: true, force: true });
await mkdir(root, { recursive: true });
const dirs: string[] = [];
for (let i = 1; i <= clients; i++) {
  const dir = join(root, "clients", `client-${i}`);
  // Ranks 8 and 16 alternate; every other client trained with rsLoRA, all in BF16.
  await writeSyntheticAdapter(dir, {
    modules,
    rank: i % 2 === 0 ? 16 : 8,
    useRslora: i % 4 === 0,
    seed: i,
    dtype: "BF16",
    bScale: 0.005 * (1 + (i % 3)),
  });
  dirs.push(dir);
}
console.log(`wrote ${clients} client adapters (${modules.length} modules each) under ${root}/clients\n`);

let failed = 0;
for (const [method, extra] of [
  ["from", ["--rank", "16"]],
  ["fedavg", ["--rank", "16"]],
  ["lore", ["--rank", "16"]],
  ["ties", ["--rank", "16"]],
] as const) {
  const out = join(root, `merged-${method}`);
  console.log(`$ tributary merge --method ${method} ${extra.join(" ")} --out ${out} <${clients} adapters>`);
  const code = await main([
    "merge",
    "--method",
    method,
    ...extra,
    "--quiet",
    "--report",
    `${out}.json`,
    "--out",
    out,
    ...dirs,
  ]);
  if (code !== 0) failed++;
  console.log("");
}
process.exitCode = failed === 0 ? 0 : 1;
