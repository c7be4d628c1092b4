/**
 * `npm run bench -- linalg`: the float64 decompositions (JS against LAPACK,
 * same matrices, one BLAS thread as in a merge worker), the float32
 * products on the merge's shapes (TensorFlow.js wasm against native BLAS),
 * and LoRE on one Llama-3-8B q_proj at n = 32 in every form of its descent.
 *
 * Options: --sizes 128,256,512,1024  --lore-clients 32
 */
import { publishTable } from "./bench-output.ts";

process.env.OPENBLAS_NUM_THREADS ??= "1";
const { loadLapack } = await import("../server/src/compute/lapack.ts");
const { jsDecompositions, useDecompositions } = await import("../server/src/merge/linalg/index.ts");
const { randomMat, randomSym } = await import("../server/src/merge/linalg/testing/test-matrices.ts");
const { loreModule } = await import("../server/src/merge/methods/lore.ts");
const { resolveOptions } = await import("../server/src/merge/options.ts");
const { selectBackend, useBackend } = await import("../server/src/compute/backend.ts");
const { loadBlasDevice } = await import("../server/src/compute/blas-device.ts");
const { f32, tfjsDevice } = await import("../server/src/merge/kernels/device-matmul.ts");
const { fillUniform, llama3QV, syntheticModule } = await import("./synthetic.ts");

const _root = new URL("..", import.meta.url).pathname;

function randomF32(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  fillUniform(out, seed, 1);
  return out;
}

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
  // The float32 products: native BLAS against TensorFlow.js on wasm, on the merge's shapes.
  const products: string[] = [];
  if (await useBackend("wasm")) {
    const blas = await loadBlasDevice();
    if (!blas.ok) throw new Error(`BLAS is needed for this benchmark: ${blas.reason}`);
    for (const [m, k, n, what] of [
      [4096, 1024, 16, "P·X, n = 128 at r = 8"],
      [1024, 4096, 16, "Q·Y"],
      [512, 4096, 512, "a Gram (R = 512)"],
      [4096, 8, 16, "one client's B·X"],
      [8, 4096, 16, "one client's A·Y"],
    ] as const) {
      const a = f32(m, k, randomF32(m * k, 3));
      const b = f32(k, n, randomF32(k * n, 4));
      const runs = m * n * k > 1e8 ? 5 : 21;
      const tw = medianMs(() => tfjsDevice.gemm(a, b), runs);
      const tb = medianMs(() => blas.device.gemm(a, b), runs);
      const gf = (ms: number) => ((2 * m * n * k) / ms / 1e6).toFixed(1);
      products.push(
        `| ${m} × ${k} · ${k} × ${n} (${what}) | ${tw.toFixed(3)} (${gf(tw)}) | ${tb.toFixed(3)} (${gf(tb)}) | ${(tw / tb).toFixed(1)}× |`,
      );
      console.error(products.at(-1));
    }
  }
  const backend = await selectBackend(); // the float32 products on what this machine selects
  const shape = llama3QV()[0];
  const group = syntheticModule(shape, loreClients, 16, 1);
  const lore: string[] = [];
  // Each row: decompositions, --iters, whether the SVTs may be the certified partial
  // ones, and the start (the paper's mean start with full SVDs is the engine before them).
  const runs: [typeof jsDecompositions, number, boolean, "mean" | "auto"][] = [
    [jsDecompositions, 1, true, "auto"], // 50 JS iterations of full SVDs take minutes; one gives the per-iteration cost
    [lapack.decompositions, 1, true, "auto"],
    [lapack.decompositions, 50, false, "mean"],
    [lapack.decompositions, 50, false, "auto"],
    [lapack.decompositions, 50, true, "auto"],
  ];
  for (const [d, iters, partial, start] of runs) {
    useDecompositions(d);
    const t0 = performance.now();
    const { result: r, svts } = loreModule(group, resolveOptions({ method: "lore", rank: 16, iters }), {
      start,
      partial,
    });
    const ms = performance.now() - t0;
    lore.push(
      `| ${d.name} | ${iters} | ${r.report.solver} | ${partial ? "certified partial, else full" : "full SVD"} | ${svts.partial} / ${svts.full} | ${r.report.iterations} | ${(ms / 1000).toFixed(2)} | ${(ms / r.report.iterations / 1000).toFixed(2)} | ${r.report.objective?.toPrecision(9) ?? "–"} |`,
    );
    console.error(lore.at(-1));
  }
  useDecompositions(jsDecompositions);
  const table = [
    `Float64 decompositions, JS vs LAPACK (${lapack.decompositions.name}, OPENBLAS_NUM_THREADS=${process.env.OPENBLAS_NUM_THREADS}), median ms, Node ${process.versions.node}:`,
    "",
    "| matrix | symEig JS | symEig LAPACK | ratio | svd JS | svd LAPACK | ratio |",
    "|---|---|---|---|---|---|---|",
    ...rows,
    "",
    "Float32 products, TensorFlow.js wasm (with its copies in and out) against native BLAS (in place), median ms (GFLOP/s):",
    "",
    "| product | wasm | blas | ratio |",
    "|---|---|---|---|",
    ...products,
    "",
    `LoRE on ${shape.name} (${shape.dOut} × ${shape.dIn}), n = ${loreClients} clients at r = 16, float32 products on ${backend.name}:`,
    "",
    "| decompositions | --iters | start | SVTs | partial / full SVTs | iterations run | seconds | seconds per iteration | objective |",
    "|---|---|---|---|---|---|---|---|---|",
    ...lore,
  ].join("\n");
  publishTable("linalg", table);
}
