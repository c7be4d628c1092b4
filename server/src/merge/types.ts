/**
 * Core data model of the merge engine. Everything here is plain data:
 * row-major `Float32Array`s plus their shapes, so modules can be moved to
 * worker threads without copying object graphs.
 *
 * One LoRA module of client `i` holds `A_i` (`rank × dIn`) and `B_i`
 * (`dOut × rank`); its task vector is `Θ_i = scaling · B_i · A_i`, which the
 * engine never materialises unless a method is elementwise.
 */

/** One client's LoRA factors for one module. */
export interface ClientLora {
  /** `A`, row-major `rank × dIn`. */
  readonly a: Float32Array;
  /** `B`, row-major `dOut × rank`. */
  readonly b: Float32Array;
  /** LoRA rank `r` of this client on this module (may differ per client). */
  readonly rank: number;
  /** PEFT scaling `lora_alpha / r` (or `lora_alpha / sqrt(r)` with rsLoRA). */
  readonly scaling: number;
}

/** Every client's factors for one module, the unit a merge method works on. */
export interface ModuleGroup {
  /** Module name, e.g. `model.layers.7.self_attn.q_proj`. */
  readonly name: string;
  readonly dIn: number;
  readonly dOut: number;
  /** One entry per client, in client order. */
  readonly clients: readonly ClientLora[];
}

/** A module's clients as ranks and scalings only, before (or without) reading their factors. */
export interface ModuleMeta {
  readonly name: string;
  readonly dIn: number;
  readonly dOut: number;
  readonly clients: readonly Pick<ClientLora, "rank" | "scaling">[];
}

/**
 * A module whose clients' factors are read on demand (from storage, on every
 * pass of a product-only merge), so no merge ever holds all of them at once.
 */
export interface ModuleSource extends ModuleMeta {
  /**
   * Client `i`'s factor, read afresh: `a` is `rank × dIn`, `b` is `dOut ×
   * rank`. The array may be a scratch buffer that the next read of the same
   * factor overwrites: use it before reading again.
   */
  read(i: number, factor: "a" | "b"): Float32Array;
}

/** A merged module in factored form: its task vector is exactly `b · a`. */
export interface MergedLora {
  /** `A`, row-major `rank × dIn`. */
  readonly a: Float32Array;
  /** `B`, row-major `dOut × rank` (all scaling folded in). */
  readonly b: Float32Array;
  readonly rank: number;
}

/** What a method reports about one merged module. */
export interface ModuleReport {
  /** Normalised per-client weights used for this module (sum to 1 where defined). */
  readonly weights: number[];
  /**
   * Method objective at the result (e.g. FroM's Eq. 6 with normalised
   * weights, `Σ ŵ_i ‖BA − Θ_i‖²`); `null` when the method defines none.
   */
  readonly objective: number | null;
  /** `‖BA − M‖²_F` where `M` is the method's full-rank combination, when defined. */
  readonly residual: number | null;
  /** Iterations the solver used (0 for closed forms). */
  readonly iterations: number;
  /** Which solver path produced the result (e.g. `core-eig`, `subspace`, `als`, `dense`). */
  readonly solver: string;
  /** Clients whose norm was above the module's norm bound (clipped or rejected), when a bound is set. */
  readonly bounded?: readonly BoundedClient[];
}

/** A client whose task vector norm exceeded a module's norm bound. */
export interface BoundedClient {
  /** Index in the module's client order. */
  readonly client: number;
  /** Its `‖Θ_i‖_F` before the bound. */
  readonly norm: number;
  readonly bound: number;
  readonly action: "clip" | "reject";
}

/** Result of merging one module. */
export interface ModuleMergeResult {
  readonly name: string;
  readonly merged: MergedLora;
  readonly report: ModuleReport;
}

/** A dense (non-LoRA) tensor from every client, e.g. `modules_to_save` weights or biases. */
export interface DenseGroup {
  readonly name: string;
  readonly shape: readonly number[];
  /** One flat row-major tensor per client. */
  readonly clients: readonly Float32Array[];
}

/** Result of merging one dense tensor. */
export interface DenseMergeResult {
  readonly name: string;
  readonly shape: readonly number[];
  readonly data: Float32Array;
  readonly weights: number[];
}
