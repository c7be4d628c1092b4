/**
 * What a merge method is, in one object: its name and description, the
 * parameters it reads (from the vocabulary of `params.ts`) with its own
 * defaults and checks, how it weighs dense tensors, its module merge, its
 * merge from a source where it has one, and the dense reference of its paper
 * that the numeric suite holds it to. `methods/registry.ts` lists them; the
 * option checks, the CLI flags and help, the federation spec and its protobuf
 * conversion are derived from there.
 */
import type { FactorStack } from "./factor-stack.ts";
import type { MergeOptions, MethodName, ParamKey } from "./params.ts";
import type { ModuleGroup, ModuleMergeResult, ModuleMeta } from "./types.ts";

/** A method's merge on the product-only route, reading each client's factors on every pass. */
export interface StreamedMerge {
  /** Whether these options allow it (default: always). */
  readonly when?: (opts: MergeOptions) => boolean;
  /** Merges `stack` (a streamed one), whose clients' squared norms are `norms2`. */
  merge(
    meta: ModuleMeta,
    stack: FactorStack,
    norms2: readonly number[],
    opts: MergeOptions,
  ): ModuleMergeResult;
}

/** One merge method (see the module comment). */
export interface MergeMethod {
  readonly name: MethodName;
  /** How people call it: `FroM`, `Geometric median`. */
  readonly title: string;
  /** One line for the help: what it computes. */
  readonly summary: string;
  /** The method-specific parameters it reads (the common ones, `PARAMS[k].common`, apply to all). */
  readonly params: readonly ParamKey[];
  /** Its own defaults where they differ from the vocabulary's (the papers' values). */
  readonly defaults?: Partial<Pick<MergeOptions, ParamKey>>;
  /** What these options may not combine to, beyond each parameter's own rule. */
  readonly check?: (opts: MergeOptions) => string | undefined;
  /** How dense (non-LoRA) tensors of the adapters are averaged: by sample counts, by `‖t_i‖^k`, or equally. */
  readonly denseWeights: "samples" | "frobenius" | "uniform";
  /** Whether its weights come from the clients' sample counts (a round needs every update's). */
  readonly usesSamples: boolean;
  /** Merges one module. */
  readonly merge: (group: ModuleGroup, opts: MergeOptions) => ModuleMergeResult;
  /** Merging from a source (only linear methods at a rank can). */
  readonly streamed?: StreamedMerge;
  /** The file of `merge/reference/` (without `.ts`) with the dense implementation of its paper's equation. */
  readonly reference: string;
}
