import { publishTable } from "./bench-output.ts";

process.env.OPENBLAS_NUM_THREADS ??= "1";
const { loadLapack } = await import("../server/src/compute/lapack.ts");
const { jsDecompositions, useDecompositions } = await import("../server/src/merge/linalg/index.ts");
const { randomMat, randomSym } = await import("../server/src/merge/linalg/test-matrices.ts");
const { mergeModule } = await import("../server/src/merge/engine.ts");
const { resolveOptions } = await import("../server/src/merge/options.ts");
const { activate } = await import("../server/src/merge/testing/backends.ts");
const { llama3QV, syntheticModule } = await import("./synthetic.ts");

const _root = new URL("..", import.meta.url).pathname;

function medianMs(fn: () => void, runs: number): number {
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    fn();
    ms.push(performance.now() - t0);
  }
  ms.sort((a, b) => a - b);
  return ms[Math.floor(ms.length / 2)];
}

/** Runs the benchmark (see the module comment). */
export async function runLinalgBench(args: string[]): Promise<void> {
  const opt = (name: string, dflt: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : dflt;
  };
  const sizes = opt("sizes", "128,256,512,1024").split(",").map(Number);
  const loreClients = Number(opt("lore-clients", "32"));
  const lapack = await loadLapack();
  if (!lapack.ok) throw new Error(`LAPACK is needed for this benchmark: ${lapack.reason}`);
  const impls = [jsDecompositions, lapack.decompositions];
  const rows: string[] = [];
  for (const n of sizes) {
    const sym = randomSym(n, 1);
    const gen = randomMat(n, n, 2);
    const runs = n >= 1024 ? 1 : n >= 512 ? 3 : 5;
    const t = impls.map((d) => ({
      eig: medianMs(() => d.symEig(sym), runs),
      svd: medianMs(() => d.svd(gen), runs),
    }));
    rows.push(
      `| ${n} × ${n} | ${t[0].eig.toFixed(1)} | ${t[1].eig.toFixed(1)} | ${(t[0].eig / t[1].eig).toFixed(1)}× | ${t[0].svd.toFixed(1)} | ${t[1].svd.toFixed(1)} | ${(t[0].svd / t[1].svd).toFixed(1)}× |`,
    );
    console.error(rows.at(-1));
  }
  await activate("wasm");
  const shape = llama3QV()[0];
  const group = syntheticModule(shape, loreClients, 16, 1);
  const lore: string[] = [];
  for (const d of impls) {
    useDecompositions(d);
    for (const iters of [1, 50]) {
      const t0 = performance.now();
      const r = mergeModule(group, resolveOptions({ method: "lore", rank: 16, iters }));
      const ms = performance.now() - t0;
      lore.push(
        `| ${d.name} | ${iters} | ${r.report.iterations} | ${(ms / 1000).toFixed(2)} | ${(ms / r.report.iterations / 1000).toFixed(2)} | ${r.report.objective?.toPrecision(6) ?? "–"} |`,
      );
      console.error(lore.at(-1));
      if (d === jsDecompositions) break; // 50 JS iterations take minutes; one gives the per-iteration cost
    }
  }
  useDecompositions(jsDecompositions);
  const table = [
    `Float64 decompositions, JS vs LAPACK (${lapack.decompositions.name}, OPENBLAS_NUM_THREADS=${process.env.OPENBLAS_NUM_THREADS}), median ms, Node ${process.versions.node}:`,
    "",
    "| matrix | symEig JS | symEig LAPACK | ratio | svd JS | svd LAPACK | ratio |",
    "|---|---|---|---|---|---|---|",
    ...rows,
    "",
    `LoRE on ${shape.name} (${shape.dOut} × ${shape.dIn}), n = ${loreClients} clients at r = 16, wasm:`,
    "",
    "| decompositions | --iters | iterations run | seconds | seconds per iteration | objective |",
    "|---|---|---|---|---|---|",
    ...lore,
  ].join("\n");
  publishTable("linalg", table);
}
