/**
 * Entry points of the pure merge engine: one LoRA module, or one dense
 * tensor, at a time. Validates the module (ops validate, kernels compute),
 * then dispatches to the method.
 */
import { mergeCentralDp } from "./dp/central-dp.ts";
import { MergeInputError } from "./errors.ts";
import { clientNorm2 } from "./grams.ts";
import { frobeniusWeights, sampleWeights } from "./methods/common.ts";
import { methodOf } from "./methods/registry.ts";
import { boundNorms } from "./norm-bound.ts";
import type { MergeOptions } from "./params.ts";
import type { DenseGroup, DenseMergeResult, ModuleGroup, ModuleMergeResult, ModuleMeta } from "./types.ts";

/** Checks what a module's metadata says before any math: clients, sample counts, ranks, scalings. */
export function validateMeta(meta: ModuleMeta, opts: MergeOptions): void {
  if (meta.clients.length === 0) throw new MergeInputError(`${meta.name}: no clients to merge`, meta.name);
  if (opts.samples !== undefined && opts.samples.length !== meta.clients.length) {
    throw new MergeInputError(
      `${meta.name}: ${opts.samples.length} sample counts for ${meta.clients.length} clients`,
      meta.name,
    );
  }
  meta.clients.forEach((c, i) => {
    if (!Number.isInteger(c.rank) || c.rank < 1) {
      throw new MergeInputError(`${meta.name}: client ${i} has rank ${c.rank}`, meta.name, i);
    }
    if (!Number.isFinite(c.scaling)) {
      throw new MergeInputError(`${meta.name}: client ${i} has scaling ${c.scaling}`, meta.name, i);
    }
  });
}

/** Checks a module's shapes before any math: `validateMeta`, and every client's factors match `dIn`, `dOut` and its rank. */
export function validateModule(group: ModuleGroup, opts: MergeOptions): void {
  validateMeta(group, opts);
  group.clients.forEach((c, i) => {
    if (c.a.length !== c.rank * group.dIn) {
      throw new MergeInputError(
        `${group.name}: client ${i} lora_A has ${c.a.length} values, expected ${c.rank}×${group.dIn}`,
        group.name,
        i,
      );
    }
    if (c.b.length !== group.dOut * c.rank) {
      throw new MergeInputError(
        `${group.name}: client ${i} lora_B has ${c.b.length} values, expected ${group.dOut}×${c.rank}`,
        group.name,
        i,
      );
    }
  });
}

/**
 * Merges one LoRA module of every client with the chosen method.
 *
 * @example
 * const opts = resolveOptions({ method: "from", rank: 16 });
 * const { merged, report } = mergeModule(group, opts); // merged.b · merged.a ≈ α Σ ŵ_i Θ_i
 */
export function mergeModule(group: ModuleGroup, opts: MergeOptions): ModuleMergeResult {
  validateModule(group, opts);
  if (opts.dp !== undefined) return mergeCentralDp(group, opts, opts.dp);
  const { group: g, kept, bounded } = boundNorms(group, opts);
  if (bounded.length === 0) return methodOf(opts.method).merge(group, opts);
  if (kept.length === 0) {
    throw new MergeInputError(
      `${group.name}: every client is above the norm bound ${bounded[0].bound}`,
      group.name,
    );
  }
  const samples = opts.samples === undefined ? undefined : kept.map((i) => opts.samples![i]);
  const knotsThresholds = opts.knotsThresholds && kept.map((i) => opts.knotsThresholds![i]);
  const result = methodOf(opts.method).merge(g, {
    ...opts,
    samples,
    ...(knotsThresholds !== undefined ? { knotsThresholds } : {}),
  });
  // Rejected clients weigh 0; the weights stay in the module's client order.
  const weights = new Array<number>(group.clients.length).fill(0);
  kept.forEach((i, j) => {
    weights[i] = result.report.weights[j] ?? 0;
  });
  return { ...result, report: { ...result.report, weights, bounded } };
}

/**
 * Merges a dense (non-LoRA) tensor, e.g. a `modules_to_save` weight: these
 * are full weights, not deltas, so they are averaged with the method's
 * client weights (FedAvg: sample counts; FroM: the tensors' own
 * `‖t_i‖^k`; others: equal).
 */
export function mergeDenseTensor(group: DenseGroup, opts: MergeOptions): DenseMergeResult {
  if (opts.dp !== undefined) {
    throw new MergeInputError(
      `${group.name}: central DP merges LoRA modules only; this adapter also has dense tensors (modules_to_save, biases)`,
      group.name,
    );
  }
  const n = group.clients.length;
  const size = group.shape.reduce((a, b) => a * b, 1);
  group.clients.forEach((t, i) => {
    if (t.length !== size) {
      throw new MergeInputError(
        `${group.name}: client ${i} has ${t.length} values, expected shape [${group.shape.join(", ")}]`,
        group.name,
        i,
      );
    }
  });
  let w: number[];
  const weighting = methodOf(opts.method).denseWeights;
  if (weighting === "samples") w = sampleWeights(n, opts.samples, group.name);
  else if (weighting === "frobenius") {
    const norms2 = group.clients.map((t) => t.reduce((s, x) => s + x * x, 0));
    w = frobeniusWeights(norms2, opts.k);
  } else w = new Array(n).fill(1 / n);
  const data = new Float32Array(size);
  const acc = new Float64Array(size);
  group.clients.forEach((t, i) => {
    for (let j = 0; j < size; j++) acc[j] += w[i] * t[j];
  });
  data.set(acc);
  return { name: group.name, shape: group.shape, data, weights: w };
}

export { clientNorm2 };
