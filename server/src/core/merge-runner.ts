/**
 * The merge-runner port: what the round merge and the offline pipeline need
 * from whatever merges LoRA modules: the worker-thread pool of `compute/`,
 * and the runner that hands modules to merge workers on other machines
 * (`merge-workers/`). The core owns it;
 * implementations import it.
 */
import type { MergeOptions } from "../merge/options.ts";
import type { DenseGroup, DenseMergeResult, ModuleGroup, ModuleMergeResult } from "../merge/types.ts";
import type { TensorLocation } from "../peft/tensor-location.ts";

/** Which tensor backend a runner merges on, and why the preferred ones were skipped. */
export interface RunnerBackend {
  /** `tensorflow`, `webgpu`, `blas`, `wasm` or `cpu`. */
  readonly name: string;
  /** npm package that provides it. */
  readonly provider: string;
  /** What runs the float64 decompositions: `js` or `lapack (…)`. */
  readonly linalg: string;
  /** The GPU adapter's description (`webgpu` only). */
  readonly adapter?: string;
  /** Reasons the preferred backends were skipped, for the start-up log. */
  readonly skipped: readonly string[];
  /**
   * Whether the matmul device runs strided products in place (`gemmInto`,
   * native BLAS), so that merges may read clients' factors from files on
   * every pass.
   */
  readonly stridedProducts: boolean;
}

/** A result and how long it took. */
export interface TimedResult<T> {
  readonly result: T;
  readonly ms: number;
}

/** How a group is handed to the runner. */
export interface SubmitOptions {
  /**
   * The group's arrays are the caller's to give away: a worker pool moves
   * each buffer the arrays wholly own to the worker (no copy), leaving them
   * detached here. Default: copied.
   */
  readonly transfer?: boolean;
}

/** One module of every input, as file locations (it crosses to a worker thread). */
export interface ModuleFiles {
  readonly name: string;
  readonly dIn: number;
  readonly dOut: number;
  readonly clients: readonly {
    readonly rank: number;
    readonly scaling: number;
    readonly a: TensorLocation;
    readonly b: TensorLocation;
  }[];
}

/** Called after each merged module (progress, telemetry). */
export type ModuleCallback = (
  name: string,
  entry: TimedResult<ModuleMergeResult>,
  done: number,
  total: number,
) => void;

/** A merge worker on another machine, as a runner that hands modules out sees it. */
export interface MergeWorkerInfo {
  readonly id: string;
  /** Modules it takes at once (fetching their factors or merging them). */
  readonly threads: number;
  /** Its tensor backend. */
  readonly backend: string;
  readonly host: string;
}

/** Merges LoRA modules and dense tensors (the port `createMergePool` implements). */
export interface MergeRunner {
  /** Backend every merge runs on. */
  readonly backend: RunnerBackend;
  /** Modules merged at once (0: in the calling thread). */
  readonly threads: number;
  mergeModule(
    group: ModuleGroup,
    opts: MergeOptions,
    submit?: SubmitOptions,
  ): Promise<TimedResult<ModuleMergeResult>>;
  mergeDense(group: DenseGroup, opts: MergeOptions): Promise<TimedResult<DenseMergeResult>>;
  /** Whether `mergeFiles` may be used: the backend has strided products (`RunnerBackend.stridedProducts`). */
  readonly readsFiles: boolean;
  /**
   * Whether `mergeFiles` takes any module, whatever the method (remote merge
   * workers read the files themselves); otherwise only modules whose merge
   * only multiplies (`streamableOptions`).
   */
  readonly readsAnyFiles?: boolean;
  /** Merges a module whose inputs are files, read again on every pass (see `readsFiles`). */
  mergeFiles(files: ModuleFiles, opts: MergeOptions): Promise<TimedResult<ModuleMergeResult>>;
  /** The merge workers this runner hands modules to, when it hands any out. */
  workers?(): readonly MergeWorkerInfo[];
  close(): Promise<void>;
}
