/**
 * Merging whole adapters: checks that the inputs can be merged together,
 * groups them module by module and runs every module through the merge pool,
 * a few at a time so memory stays bounded by the modules in flight.
 */
import type { MergeRunner, ModuleCallback, ModuleFiles, TimedResult } from "../core/merge-runner.ts";
import { MergeInputError } from "../merge/errors.ts";
import { streamableOptions } from "../merge/methods/streamed.ts";
import type { MergeOptions } from "../merge/options.ts";
import type { DenseGroup, DenseMergeResult, ModuleGroup, ModuleMergeResult } from "../merge/types.ts";
import type { LazyAdapter } from "../peft/lazy-adapter.ts";
import { withKnotsThresholds } from "./knots-thresholds.ts";
import { moduleFiles } from "./module-files.ts";

/** One LoRA module of an input adapter (structurally a PEFT `LoraModule`). */
export interface InputModule {
  readonly a: Float32Array;
  readonly b: Float32Array;
  readonly rank: number;
  readonly dIn: number;
  readonly dOut: number;
  readonly scaling: number;
}

/** One input adapter, already decoded. */
export interface AdapterInput {
  /** Where it came from (a directory, a client id), for error messages. */
  readonly label: string;
  readonly baseModel?: string;
  readonly modules: ReadonlyMap<string, InputModule>;
  readonly dense: ReadonlyMap<string, { readonly shape: readonly number[]; readonly data: Float32Array }>;
}

/** A merged module with its timing. */
export type MergedModuleEntry = TimedResult<ModuleMergeResult>;

/** Everything a merge produced. */
export interface MergeOutcome {
  readonly modules: Map<string, MergedModuleEntry>;
  readonly dense: Map<string, DenseMergeResult>;
  readonly ms: number;
}

/** Natural order of module names (`layers.2` before `layers.10`). */
export function compareModuleNames(a: string, b: string): number {
  return a.localeCompare(b, "en", { numeric: true });
}

/** What the compatibility check looks at: names and shapes, no tensor data. */
export interface AdapterShape {
  readonly label: string;
  readonly baseModel?: string;
  readonly modules: ReadonlyMap<string, { readonly dIn: number; readonly dOut: number }>;
  readonly dense: ReadonlyMap<string, { readonly shape: readonly number[] }>;
}

/**
 * Throws `MergeInputError` naming the adapter and module when inputs disagree
 * on base model, module set, module shapes or dense tensor shapes.
 */
export function checkCompatible(inputs: readonly AdapterShape[]): void {
  if (inputs.length === 0) throw new MergeInputError("no adapters to merge");
  const first = inputs[0];
  inputs.forEach((inp, i) => {
    if (i === 0) return;
    if (first.baseModel !== undefined && inp.baseModel !== undefined && first.baseModel !== inp.baseModel) {
      throw new MergeInputError(
        `${inp.label}: base model "${inp.baseModel}" differs from "${first.baseModel}" of ${first.label}`,
        undefined,
        i,
      );
    }
    for (const name of first.modules.keys()) {
      if (!inp.modules.has(name))
        throw new MergeInputError(
          `${inp.label}: missing module ${name} (present in ${first.label})`,
          name,
          i,
        );
    }
    for (const [name, m] of inp.modules) {
      const ref = first.modules.get(name);
      if (ref === undefined)
        throw new MergeInputError(`${inp.label}: module ${name} is not in ${first.label}`, name, i);
      if (ref.dIn !== m.dIn || ref.dOut !== m.dOut) {
        throw new MergeInputError(
          `${inp.label}: module ${name} maps ${m.dIn}→${m.dOut}, expected ${ref.dIn}→${ref.dOut} as in ${first.label}`,
          name,
          i,
        );
      }
    }
    for (const [name, t] of first.dense) {
      const other = inp.dense.get(name);
      if (other === undefined)
        throw new MergeInputError(
          `${inp.label}: missing tensor ${name} (present in ${first.label})`,
          name,
          i,
        );
      if (other.shape.join(",") !== t.shape.join(",")) {
        throw new MergeInputError(
          `${inp.label}: tensor ${name} has shape [${other.shape.join(", ")}], expected [${t.shape.join(", ")}] as in ${first.label}`,
          name,
          i,
        );
      }
    }
    for (const name of inp.dense.keys()) {
      if (!first.dense.has(name))
        throw new MergeInputError(`${inp.label}: tensor ${name} is not in ${first.label}`, name, i);
    }
  });
}

/** The module group of `name` across all inputs (no copies). */
export function groupModule(inputs: readonly AdapterInput[], name: string): ModuleGroup {
  const first = inputs[0].modules.get(name)!;
  return {
    name,
    dIn: first.dIn,
    dOut: first.dOut,
    clients: inputs.map((inp) => {
      const m = inp.modules.get(name)!;
      return { a: m.a, b: m.b, rank: m.rank, scaling: m.scaling };
    }),
  };
}

/** Loads every input's part of one module or dense tensor (from memory or from storage). */
export interface GroupSource {
  readonly modules: readonly string[];
  readonly dense: readonly string[];
  /** Each `loadModule` returns fresh arrays the merge may move to a worker (no copy). */
  readonly fresh?: boolean;
  loadModule(name: string): Promise<ModuleGroup> | ModuleGroup;
  loadDense(name: string): Promise<DenseGroup> | DenseGroup;
  /** A module's inputs as files, when every input is read from one (see `MergeRunner.mergeFiles`). */
  files?(name: string): ModuleFiles | undefined;
}

/**
 * Merges module after module from `source`, keeping at most `threads + 1`
 * modules in flight so memory is bounded by a few modules' worth of inputs,
 * whatever the number of modules. The one waiting module keeps the workers
 * busy while the next is read (a coordinator round at n = 32 merged in
 * 3.8–5.0 s with it, 5.4 s without).
 */
export async function mergeGroups(
  source: GroupSource,
  opts: MergeOptions,
  pool: MergeRunner,
  onModule?: ModuleCallback,
): Promise<MergeOutcome> {
  const t0 = performance.now();
  const names = [...source.modules].sort(compareModuleNames);
  opts = await withKnotsThresholds({ modules: names, loadModule: (n) => source.loadModule(n) }, opts);
  const modules = new Map<string, MergedModuleEntry>();
  let next = 0;
  let done = 0;
  const inFlight = Math.max(1, pool.threads) + 1;
  const lane = async () => {
    while (next < names.length) {
      const name = names[next++];
      // A module whose merge only multiplies is read by the worker itself on
      // every pass, so no one holds all its clients' factors.
      // Central DP merges where its noise key is (in-process): never from files, never on merge workers.
      const files = pool.readsFiles && opts.dp === undefined ? source.files?.(name) : undefined;
      const entry =
        files !== undefined && (pool.readsAnyFiles === true || streamableOptions(files, opts))
          ? await pool.mergeFiles(files, opts)
          : await pool.mergeModule(await source.loadModule(name), opts, { transfer: source.fresh === true });
      modules.set(name, entry);
      done++;
      onModule?.(name, entry, done, names.length);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, lane));
  const dense = new Map<string, DenseMergeResult>();
  for (const name of [...source.dense].sort(compareModuleNames)) {
    dense.set(name, (await pool.mergeDense(await source.loadDense(name), opts)).result);
  }
  // Keep the output in module order regardless of completion order.
  const ordered = new Map(names.map((n) => [n, modules.get(n)!]));
  return { modules: ordered, dense, ms: performance.now() - t0 };
}

/**
 * Merges every module and dense tensor of compatible in-memory adapters.
 *
 * @example
 * const outcome = await mergeAdapters(inputs, resolveOptions({ method: "from", rank: 16 }), pool);
 */
export async function mergeAdapters(
  inputs: readonly AdapterInput[],
  opts: MergeOptions,
  pool: MergeRunner,
  onModule?: ModuleCallback,
): Promise<MergeOutcome> {
  checkCompatible(inputs);
  return mergeGroups(
    {
      modules: [...inputs[0].modules.keys()],
      dense: [...inputs[0].dense.keys()],
      loadModule: (name) => groupModule(inputs, name),
      loadDense: (name) => ({
        name,
        shape: inputs[0].dense.get(name)!.shape,
        clients: inputs.map((inp) => inp.dense.get(name)!.data),
      }),
    },
    opts,
    pool,
    onModule,
  );
}

/**
 * Merges adapters read one module at a time (e.g. stored updates): only the
 * modules in flight are ever in memory.
 */
export async function mergeLazyAdapters(
  inputs: readonly LazyAdapter[],
  opts: MergeOptions,
  pool: MergeRunner,
  onModule?: ModuleCallback,
): Promise<MergeOutcome> {
  checkCompatible(inputs);
  const first = inputs[0];
  return mergeGroups(
    {
      modules: [...first.modules.keys()],
      dense: [...first.dense.keys()],
      fresh: true,
      async loadModule(name) {
        const parts = await Promise.all(inputs.map((inp) => inp.loadModule(name)));
        const { dIn, dOut } = parts[0];
        return {
          name,
          dIn,
          dOut,
          clients: parts.map((m) => ({ a: m.a, b: m.b, rank: m.rank, scaling: m.scaling })),
        };
      },
      async loadDense(name) {
        const parts = await Promise.all(inputs.map((inp) => inp.loadDense(name)));
        return { name, shape: parts[0].shape, clients: parts.map((p) => p.data) };
      },
      files: (name) => moduleFiles(inputs, name),
    },
    opts,
    pool,
    onModule,
  );
}
