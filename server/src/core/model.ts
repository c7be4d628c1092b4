/**
 * Domain model of the coordinator: federations, enrolled clients, rounds and
 * updates, as plain JSON-serialisable records (they are journaled as they
 * are). Independent of gRPC, NATS and the storage backend; the transport
 * edges translate to and from the protobuf messages.
 */
import type { AdapterRankVariant, AnnouncedResult, TensorDType } from "@tributary/protocol";
import type { MergeOptions, MethodName, ParamKey } from "../merge/params.ts";

/** One LoRA target module a federation's adapters must contain. */
export interface ModuleSpec {
  /** Module name without the `base_model.model.` prefix, e.g. `model.layers.0.self_attn.q_proj`. */
  readonly name: string;
  readonly dIn: number;
  readonly dOut: number;
  /** Largest LoRA rank a client may submit for this module. */
  readonly maxRank: number;
}

/** What every update of a federation must look like. */
export interface AdapterSchema {
  /** `base_model_name_or_path` every adapter must declare. */
  readonly baseModel: string;
  readonly modules: readonly ModuleSpec[];
  /** dtypes accepted for the LoRA tensors. */
  readonly dtypes: readonly TensorDType[];
}

/**
 * How a federation merges: a method of the merge engine and its parameters,
 * as the engine's vocabulary (`merge/params.ts`) names them; unset ones take
 * the method's defaults.
 */
export type MergeSpec = {
  readonly method: MethodName;
  /** Output rank; `undefined` = largest input rank; `"full"` = exact concatenation. */
  readonly rank?: number | "full";
} & { readonly [K in ParamKey]?: Exclude<MergeOptions[K], undefined> };

/** What happens when a round's deadline passes without quorum. */
export type DeadlinePolicy = "extend-once" | "fail";

/** When rounds open and close. */
export interface RoundPolicy {
  /** Connected enrolled clients needed before a round opens automatically (at least `quorum` too). */
  readonly minClients: number;
  /**
   * Clients selected per round. With `cohortFraction` too, the cohort is the
   * larger of the two, capped at the connected clients and never below
   * `quorum`; with neither, every connected client is selected.
   */
  readonly cohortSize?: number;
  /** Fraction of the connected clients selected per round, in (0, 1]. */
  readonly cohortFraction?: number;
  /** Accepted updates needed to close a round. */
  readonly quorum: number;
  /** After quorum, keep accepting stragglers for this long (0 = close at once; closes early when the whole cohort has submitted). */
  readonly waitAfterQuorumMs: number;
  /** Hard deadline after the round opens. */
  readonly deadlineMs: number;
  readonly onDeadline: DeadlinePolicy;
  /** Largest accepted update (safetensors bytes). */
  readonly maxUpdateBytes: number;
  /** Open the next round as soon as one is published (default true). */
  readonly autoAdvance?: boolean;
  /** Buffered asynchronous rounds (FedBuff) instead of synchronous ones. */
  readonly buffered?: BufferedRounds;
  /** FLoRA: clients fold each merged adapter into their base and start each round from fresh factors. */
  readonly foldIntoBase?: boolean;
}

/**
 * Buffered asynchronous rounds (FedBuff; federation.proto `BufferedRounds`):
 * anyone enrolled submits at any time, naming the round that was open when
 * it fetched the global adapter; `size` updates fold into the global adapter
 * as `global + serverLr · Σ s(τ_i) w_i Θ_i` (rank step exact), τ_i its
 * staleness, and each fold is the round's published adapter.
 */
export interface BufferedRounds {
  readonly size: number;
  readonly staleness: StalenessFunction;
  readonly serverLr: number;
  /** Updates staler than this are refused. */
  readonly maxStaleness: number;
}

/** How an update's weight falls with its staleness τ. */
export type StalenessFunction =
  | { readonly kind: "constant" }
  | { readonly kind: "polynomial"; readonly a: number }
  | { readonly kind: "hinge"; readonly a: number; readonly b: number };

/**
 * Central differential privacy of a federation's rounds (docs/privacy.md):
 * clipping to `clipNorm`, the uniform mean, Gaussian noise of standard
 * deviation `noiseMultiplier · clipNorm / m`, the rank step; ε accounted at
 * `delta`, no round opened past `epsilonBudget`.
 */
export interface PrivacySpec {
  readonly clipNorm: number;
  readonly noiseMultiplier: number;
  readonly delta: number;
  /** `undefined` = no budget. */
  readonly epsilonBudget?: number;
  /** Record each round's noise key in its result (off: the key is secret). */
  readonly reproducible: boolean;
  /** Adaptive clipping (Andrew et al. 2021); `undefined` = the clip norm stays `clipNorm`. */
  readonly adaptive?: AdaptiveClipping;
}

/** The clip norm following a quantile of the clients' update norms. */
export interface AdaptiveClipping {
  /** γ ∈ (0, 1): the fraction of clients the clip norm should leave unclipped. */
  readonly targetQuantile: number;
  /** η > 0: `C ← C · exp(−η (b̃ − γ))`. */
  readonly clipLr: number;
  /** σ_b > z / 2: the noise on the count of unclipped clients (in clients). */
  readonly clippedCountStddev: number;
}

/** A federation as created by the operator. */
export interface Federation {
  readonly id: string;
  readonly name: string;
  readonly schema: AdapterSchema;
  readonly merge: MergeSpec;
  readonly policy: RoundPolicy;
  /** Central differential privacy; `undefined` = none. */
  readonly privacy?: PrivacySpec;
  /** Epoch milliseconds. */
  readonly createdAt: number;
}

/** A client enrolled in a federation. The token itself is never stored. */
export interface ClientRecord {
  readonly federationId: string;
  readonly clientId: string;
  /** Hex sha256 of the client's bearer token. */
  readonly tokenSha256: string;
  readonly enrolledAt: number;
}

/** Life cycle of a round. */
export type RoundState = "open" | "merging" | "published" | "failed" | "aborted";

/** One round of a federation. */
export interface RoundRecord {
  readonly federationId: string;
  /** 1, 2, 3, … per federation. */
  readonly number: number;
  readonly state: RoundState;
  readonly openedAt: number;
  /** Epoch ms at which the round closes or fails whatever happens. */
  readonly deadlineAt: number;
  /** Whether the deadline was already extended once. */
  readonly extended: boolean;
  /** Client ids invited to this round. */
  readonly cohort: readonly string[];
  /** When quorum was reached, if it was. */
  readonly quorumAt?: number;
  readonly closedAt?: number;
  /** Hex sha256 content hash of the merged adapter, once merged. */
  readonly resultHash?: string;
  /** Once merged: its adapter truncated to each smaller client rank (as `RoundResult.rankVariants`). */
  readonly rankVariants?: readonly AdapterRankVariant[];
  /** With `rankVariants`: the merged adapter's own rank. */
  readonly mergedRank?: number;
  /** Whether the result has been announced on NATS. */
  readonly published?: boolean;
  readonly failure?: string;
  /**
   * Whose fault a failed merge was: the clients' (their updates left the round
   * below its quorum) or the coordinator's (I/O, a bug). Only the latter may
   * be merged again (`retryMerge`).
   */
  readonly mergeFault?: "clients" | "coordinator";
  /** With central DP: the round's sampling rate, cohort / enrolled clients when it opened. */
  readonly samplingRate?: number;
  /** With central DP: the clip norm its merge uses (set when it opens), and the next round's (adaptive, once merged). */
  readonly clipNorm?: number;
  readonly nextClipNorm?: number;
  /** With central DP, once merged: ε of this round alone, and the federation's after it. */
  readonly roundEpsilon?: number;
  readonly epsilon?: number;
}

/** An accepted (durably stored) update. */
export interface UpdateRecord {
  readonly federationId: string;
  readonly round: number;
  readonly clientId: string;
  /** Client-chosen idempotency key. */
  readonly updateId: string;
  readonly samples: number;
  readonly metrics: Readonly<Record<string, number>>;
  /** Hex sha256 of the safetensors bytes. */
  readonly sha256: string;
  readonly size: number;
  readonly receivedAt: number;
  /** The adapter's `adapter_config.json` text. */
  readonly configJson: string;
  /**
   * What intake measured of each module (absent in journals written before
   * it was recorded): the merge checks the stored update still reads so.
   */
  readonly modules?: Readonly<Record<string, UpdateModuleSummary>>;
  /**
   * Buffered rounds: the round that was open when the client fetched the
   * global adapter it trained from (its header's `round`); the update is
   * folded in `round`, so its staleness is `round − baseRound`.
   */
  readonly baseRound?: number;
}

/** One module of an accepted update, as intake measured it. */
export interface UpdateModuleSummary {
  readonly rank: number;
  /** LoRA scaling (`lora_alpha / r`, or `/ √r` with rsLoRA). */
  readonly scaling: number;
  /** Task-vector norm `‖s·B·A‖_F`, float64. */
  readonly norm: number;
}

/**
 * A merged, stored adapter's result: what the protocol's NATS announcement
 * carries (`AnnouncedResult`), with the method one of the engine's. The
 * weights are each client's mean merge weight over modules.
 */
export interface RoundResult extends AnnouncedResult {
  readonly method: MethodName;
  /** Clients whose update the merge had to leave out, and why (not announced; shown to operators). */
  readonly excluded?: readonly MergeExclusion[];
  /** With central DP: how many updates the clip norm scaled down. */
  readonly clipped?: number;
  /** With adaptive clipping: the noised fraction of updates at or under the clip norm. */
  readonly unclippedFraction?: number;
  /** With central DP and `reproducible`: the round's noise key (64 hex digits). */
  readonly noiseKey?: string;
}

/** A client's update that the round merge left out. */
export interface MergeExclusion {
  readonly clientId: string;
  readonly reason: string;
}
