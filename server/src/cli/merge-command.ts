/**
 * `tributary merge`: merges PEFT LoRA adapter directories into a new PEFT
 * adapter, module by module on the merge pool, prints a per-module summary
 * and optionally writes it as a JSON report.
 */
import { createHash } from "node:crypto";
import { realpath, stat, writeFile } from "node:fs/promises";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { newNoiseKey } from "@tributary/protocol";
import { createMergePool } from "../compute/merge-pool.ts";
import { centralDpProblem } from "../merge/dp/central-dp.ts";
import { clipFactors } from "../merge/dp/clip.ts";
import { MERGE_METHODS } from "../merge/methods/registry.ts";
import {
  defaultOptions,
  METHODS,
  type MergeOptions,
  type MethodName,
  PARAM_KEYS,
  PARAMS,
  type ParamKey,
  resolveOptions,
} from "../merge/options.ts";
import { type AdapterOutput, type OpenAdapterDir, openAdapterDir, writeAdapter } from "../peft/index.ts";
import { adapterNorms2 } from "../pipeline/adapter-norms.ts";
import { checkCompatible, mergeLazyAdapters } from "../pipeline/merge-adapters.ts";
import { mergedOutput } from "../pipeline/merged-output.ts";
import { choiceOption, integerOption, numberListOption, numberOption, UsageError } from "./args.ts";
import type { CliIo } from "./io.ts";
import { buildReport, formatSummary } from "./merge-report.ts";
import { CommandError } from "./system-errors.ts";

/** `--flag X (default)` for each of `keys`, the method's defaults applied. */
function flagsHelp(keys: readonly ParamKey[], method?: MethodName): string {
  const defaults = method === undefined ? undefined : defaultOptions(method);
  return keys
    .map((k) => {
      const spec = PARAMS[k];
      const value = defaults?.[k] ?? spec.default;
      const shown =
        typeof value === "number" && value !== 0 && Math.abs(value) < 1e-3 ? value.toExponential() : value;
      return `--${spec.flag} ${spec.placeholder}${shown !== undefined ? ` (${shown})` : ""}`;
    })
    .join("  ");
}

/** One help line per method, from the registry: its title, name, summary and parameters. */
function methodsHelp(): string {
  return METHODS.map((name) => {
    const m = MERGE_METHODS[name];
    const flags = m.params.length === 0 ? "" : `\n${" ".repeat(21)}${flagsHelp(m.params, name)}`;
    return `  ${name.padEnd(18)} ${m.title}: ${m.summary}${flags}`;
  }).join("\n");
}

/** Help text of `tributary merge`. */
export const MERGE_USAGE = `Usage: tributary merge --method <method> --out DIR [options] ADAPTER_DIR...

Merges PEFT LoRA adapters (adapter_config.json + adapter_model.safetensors)
into a new PEFT adapter in DIR.

Common options:
  --out DIR          output adapter directory (created, or its adapter files replaced
                     atomically; never an input directory or an existing file)
  --rank N|full      output rank per module (default: the largest input rank;
                     "full" = exact concatenation, rank Σr)
  --scale X          multiplier of the merged task vector (FroM α, λ of task
                     arithmetic, TIES, DARE, LoRE; default 1). Alias: --lambda
  --dtype f32|f16|bf16   output dtype (default: the inputs')
  --weights N,N,...  per-adapter sample counts (FedAvg weights)
  --report FILE      also write the per-module summary as JSON
  --threads N        worker threads (default: one per core; 0 = in-process)
  --seed N           seed of every random choice (default 0)
  --norm-bound X     per-module bound on each adapter's task-vector norm ‖Θ_i‖_F
  --norm-bound-median X   the bound as X × the module's median adapter norm
  --norm-bound-action clip|reject   rescale adapters above it (default) or leave them out
  --clip-norm C      central DP (with --method fedavg and a --rank): clip each
                     adapter to Frobenius norm C over all its modules, take the
                     uniform mean, add Gaussian noise, then the rank step
  --noise-multiplier Z   noise σ = Z·C/n per entry (0: the clipped merge exactly);
                     --seed S makes the noise reproducible, else it is secret
  --quiet            no per-module progress on stderr

Methods (--method) and their options:
${methodsHelp()}

Exit codes: 0 merged, 1 unusable input (named in the message), 2 usage error.`;

/** The value of each parameter flag given, parsed by its kind. */
function paramValues(
  values: Record<string, string | boolean | undefined>,
): Partial<Record<ParamKey, unknown>> {
  const out: Partial<Record<ParamKey, unknown>> = {};
  for (const key of PARAM_KEYS) {
    const spec = PARAMS[key];
    const raw = values[spec.flag] as string | undefined;
    out[key] =
      spec.kind === "integer"
        ? integerOption(spec.flag, raw)
        : spec.kind === "number"
          ? numberOption(spec.flag, raw)
          : choiceOption(spec.flag, raw, spec.choices ?? []);
  }
  return out;
}

interface MergeArgs {
  readonly options: MergeOptions;
  readonly out: string;
  readonly inputs: string[];
  readonly dtype: AdapterOutput["dtype"] | undefined;
  readonly report: string | undefined;
  readonly threads: number | undefined;
  readonly quiet: boolean;
  /** Central DP (`--clip-norm`, `--noise-multiplier`); `seed` is `--seed` when given (else the noise is secret). */
  readonly dp?: { readonly clipNorm: number; readonly noiseMultiplier: number; readonly seed?: number };
}

function parseMergeArgs(argv: readonly string[]): MergeArgs | "help" {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  const v = parsed.values;
  /** The parameter flags, named by the registry (`merge/params.ts`). */
  const flags = v as Record<string, string | boolean | undefined>;
  if (v.help === true) return "help";
  if (v.method === undefined) throw new UsageError("--method is required");
  if (v.out === undefined) throw new UsageError("--out DIR is required");
  if (parsed.positionals.length === 0) throw new UsageError("no adapter directories given");
  if (flags.scale !== undefined && v.lambda !== undefined)
    throw new UsageError("give --scale or --lambda, not both");
  const rank = v.rank === "full" ? "full" : integerOption("rank", v.rank);
  const samples = numberListOption("weights", v.weights);
  if (samples !== undefined && samples.length !== parsed.positionals.length) {
    throw new UsageError(
      `--weights has ${samples.length} entries for ${parsed.positionals.length} adapters (one sample count per adapter)`,
    );
  }
  const params = paramValues(flags) as Partial<MergeOptions>;
  const options = resolveOptions({
    ...params,
    method: v.method,
    rank,
    scale: params.scale ?? numberOption("lambda", v.lambda),
    samples,
  });
  const dp = dpArgs(
    v["clip-norm"],
    v["noise-multiplier"],
    flags.seed !== undefined ? options.seed : undefined,
  );
  if (dp !== undefined) {
    const problem = centralDpProblem(options, dp);
    if (problem !== undefined) throw new UsageError(problem);
  }
  const dtype = choiceOption("dtype", v.dtype, ["f32", "f16", "bf16"] as const);
  const threads = integerOption("threads", v.threads);
  if (threads !== undefined && threads < 0) throw new UsageError(`--threads must be ≥ 0, got ${threads}`);
  return {
    options,
    out: v.out,
    inputs: parsed.positionals,
    dtype: dtype === undefined ? undefined : (dtype.toUpperCase() as AdapterOutput["dtype"]),
    report: v.report,
    threads,
    quiet: v.quiet === true,
    ...(dp !== undefined ? { dp } : {}),
  };
}

/** `--clip-norm` and `--noise-multiplier`, both or neither. */
function dpArgs(
  clip: string | undefined,
  noise: string | undefined,
  seed: number | undefined,
): MergeArgs["dp"] {
  if (clip === undefined && noise === undefined) return undefined;
  if (clip === undefined || noise === undefined) {
    throw new UsageError(
      "central DP needs both --clip-norm C and --noise-multiplier Z (0 for clipping alone)",
    );
  }
  const clipNorm = numberOption("clip-norm", clip) as number;
  const noiseMultiplier = numberOption("noise-multiplier", noise) as number;
  return { clipNorm, noiseMultiplier, ...(seed !== undefined ? { seed } : {}) };
}

/**
 * The merge options with central DP filled in for `inputs`: each adapter's
 * clip factor from its whole-adapter norm, and the noise key (from `--seed`,
 * or secret). Prints what it did, never the key.
 */
async function withCentralDp(
  args: MergeArgs & { dp: NonNullable<MergeArgs["dp"]> },
  inputs: readonly OpenAdapterDir[],
  io: CliIo,
): Promise<MergeOptions> {
  const { clipNorm, noiseMultiplier, seed } = args.dp;
  const dense = inputs.find((i) => i.dense.size > 0);
  if (dense !== undefined) {
    throw new CommandError(
      `${dense.label}: has dense tensors (${[...dense.dense.keys()][0]}, …); central DP merges LoRA modules only`,
    );
  }
  const norms2 = await adapterNorms2(inputs);
  const factors = clipFactors(norms2, clipNorm);
  const clipped = factors.filter((f) => f < 1).length;
  const noiseKey =
    seed !== undefined
      ? createHash("sha256").update(`tributary central-dp noise, seed ${seed}`).digest("hex")
      : newNoiseKey();
  const sigma = (noiseMultiplier * clipNorm) / inputs.length;
  io.err(
    `central DP: uniform mean of ${inputs.length} updates clipped to ${clipNorm} (${clipped} clipped; norms ${norms2.map((n) => Math.sqrt(n).toPrecision(4)).join(", ")}), ` +
      `noise multiplier ${noiseMultiplier} → σ = ${sigma.toPrecision(4)} per entry; noise ${seed !== undefined ? `from --seed ${seed} (reproducible)` : "from a secret seed"}`,
  );
  return { ...args.options, dp: { clipNorm, noiseMultiplier, clipFactors: factors, noiseKey } };
}

function parse(argv: readonly string[]) {
  const text = { type: "string" } as const;
  return parseArgs({
    args: [...argv],
    allowPositionals: true,
    strict: true,
    options: {
      method: text,
      out: text,
      rank: text,
      lambda: text,
      ...Object.fromEntries(PARAM_KEYS.map((k) => [PARAMS[k].flag, text])),
      weights: text,
      "clip-norm": text,
      "noise-multiplier": text,
      dtype: text,
      report: text,
      threads: text,
      quiet: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
}

/**
 * Refuses, before anything is read or merged, an `--out` that is an existing
 * file, or one of the input directories (the merge would overwrite its own
 * input). An existing output directory is replaced, file by file, atomically.
 */
async function checkOutputDir(out: string, inputs: readonly string[]): Promise<void> {
  const info = await stat(out).catch(() => undefined);
  if (info === undefined) return;
  if (!info.isDirectory()) {
    throw new CommandError(
      `--out ${out}: exists and is not a directory; name a new directory for the merged adapter`,
    );
  }
  const real = await realpath(out);
  for (const input of inputs) {
    if ((await realpath(input).catch(() => resolve(input))) === real) {
      throw new CommandError(
        `--out ${out} is one of the inputs; the merge would overwrite it. Name a new directory for the merged adapter`,
      );
    }
  }
}

/**
 * Runs `tributary merge` with `argv` (after the subcommand); returns the exit code.
 * Typed errors propagate to `main`, which maps them to exit codes.
 */
export async function runMerge(argv: readonly string[], io: CliIo): Promise<number> {
  const args = parseMergeArgs(argv);
  if (args === "help") {
    io.out(MERGE_USAGE);
    return 0;
  }
  await checkOutputDir(args.out, args.inputs);
  const t0 = performance.now();
  // Opened lazily: configs and safetensors headers now, each module's tensors
  // when it is merged, so memory holds the modules in flight, not the inputs.
  const inputs: OpenAdapterDir[] = [];
  try {
    for (const dir of args.inputs) inputs.push(await openAdapterDir(dir));
    return await mergeOpened(args, inputs, io, t0);
  } finally {
    await Promise.all(inputs.map((i) => i.close()));
  }
}

async function mergeOpened(
  args: MergeArgs,
  inputs: readonly OpenAdapterDir[],
  io: CliIo,
  t0: number,
): Promise<number> {
  const readMs = performance.now() - t0;
  checkCompatible(inputs); // fail before starting any worker
  const pool = await createMergePool({ threads: args.threads });
  try {
    const skipped = pool.backend.skipped.length > 0 ? ` (skipped: ${pool.backend.skipped.join("; ")})` : "";
    io.err(
      `tensor backend: ${pool.backend.name} via ${pool.backend.provider}, ${pool.threads || 1} thread(s); decompositions: ${pool.backend.linalg}${skipped}`,
    );
    io.err(
      `merging ${inputs.length} adapters with ${args.options.method} (headers read in ${fmtMs(readMs)})`,
    );
    const options =
      args.dp !== undefined ? await withCentralDp({ ...args, dp: args.dp }, inputs, io) : args.options;
    const outcome = await mergeLazyAdapters(inputs, options, pool, (name, entry, done, total) => {
      if (!args.quiet) io.err(`  [${done}/${total}] ${name} ${fmtMs(entry.ms)}`);
    });
    const dtype = args.dtype ?? inputs[0].dtype;
    const output = mergedOutput(inputs[0], outcome, dtype, {
      tributary_method: args.options.method,
      tributary_inputs: String(inputs.length),
    });
    const { bytes } = await writeAdapter(args.out, output);
    const report = buildReport(inputs, outcome, args.options, pool.backend.name);
    for (const line of formatSummary(report)) io.out(line);
    io.out(
      `wrote ${args.out} (${(bytes / 2 ** 20).toFixed(1)} MiB, ${dtype}) in ${fmtMs(performance.now() - t0)}; merge ${fmtMs(outcome.ms)}`,
    );
    if (args.report !== undefined) {
      await writeFile(args.report, `${JSON.stringify(report, null, 2)}\n`);
      io.err(`report: ${args.report}`);
    }
    return 0;
  } finally {
    await pool.close();
  }
}

function fmtMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`;
}
