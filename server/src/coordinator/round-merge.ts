/**
 * Merging a closed round: the accepted updates are read back from the store
 * module by module (never whole), merged with the federation's method on the
 * merge pool, encoded as a PEFT adapter in the federation's canonical form
 * (`canonical-output.ts`: names, layout and config from the schema, nothing
 * from a client) and stored content-addressed. The per-client merge weights
 * travel inside the adapter's safetensors metadata too, so the adapter says
 * how it was made. The content is a function of the accepted updates and the
 * merge spec alone (no wall-clock time, no unseeded randomness): a merge
 * redone after a crash stores the same bytes under the same hash — except
 * under central DP, whose noise is drawn from a fresh secret key each time
 * (only the stored result is ever released: the store keeps one per round).
 * When it was merged is the journal's to say (`round-merged`).
 */

import { AdapterFormatError, type AdapterRankVariant, newNoiseKey } from "@tributary/protocol";
import type { MergeRunner, ModuleCallback } from "../core/merge-runner.ts";
import type {
  BufferedRounds,
  Federation,
  MergeExclusion,
  PrivacySpec,
  RoundRecord,
  RoundResult,
  UpdateRecord,
} from "../core/model.ts";
import { isStorageFull, isTransientFault } from "../core/storage-faults.ts";
import type { CoordinatorStore, StoredAdapter, UpdateReader } from "../core/store.ts";
import { noisyUnclippedFraction, updatesNoiseMultiplier } from "../merge/dp/adaptive-clip.ts";
import { clipFactors } from "../merge/dp/clip.ts";
import { MergeInputError } from "../merge/errors.ts";
import { median } from "../merge/norm-bound.ts";
import { resolveOptions } from "../merge/options.ts";
import type { CentralDp, MergeOptions } from "../merge/params.ts";
import { encodeAdapter, type LazyAdapter, lazyAdapter, placesIn } from "../peft/index.ts";
import { adapterNorms2 } from "../pipeline/adapter-norms.ts";
import { type MergeOutcome, mergeLazyAdapters } from "../pipeline/merge-adapters.ts";
import { mergedOutput } from "../pipeline/merged-output.ts";
import { updateLabel } from "./adapter-schema.ts";
import { openStoredAdapter, scaledAdapter } from "./buffered-fold.ts";
import { foldCoefficients } from "./buffered-rounds.ts";
import { canonicalDtype, canonicalLayout } from "./canonical-output.ts";
import { mergeOptionsFor } from "./federation-config.ts";
import { outcomeRank, truncatedOutcome, variantRanks } from "./rank-variants.ts";

/** Metadata keys of a merged adapter written by the coordinator. */
export const RESULT_METADATA = {
  federation: "tributary_federation",
  round: "tributary_round",
  method: "tributary_method",
  clients: "tributary_clients",
  weights: "tributary_weights",
  /** Written by coordinators before merges were byte-deterministic; read back from such adapters only. */
  mergedAt: "tributary_merged_at",
  excluded: "tributary_excluded",
  /** In a rank variant of the round's adapter: the rank it was truncated to. */
  rankVariant: "tributary_rank_variant",
} as const;

/**
 * Tries of a merge that keeps meeting transient I/O faults other than a full
 * disk (backoff 1 s, doubling, at most 60 s: about 4 min). A full disk is
 * retried until space returns or the merge is called off (`keepTrying`).
 */
const MAX_FAULT_TRIES = 8;

/** So many clients' updates could not be merged that the rest fall below the quorum: the clients' fault, not to be retried. */
export class ClientsBelowQuorumError extends Error {
  override readonly name = "ClientsBelowQuorumError";
}

/** The merge was called off while it waited to retry (the round was aborted, the coordinator is closing). */
export class MergeCalledOffError extends Error {
  override readonly name = "MergeCalledOffError";
}

/**
 * The client a merge failure is attributable to: an adapter error naming
 * that client's update file (`client <id>/…`), or a merge input error naming
 * its index; `undefined` when no single client is to blame.
 */
export function culpritOf(err: unknown, updates: readonly UpdateRecord[]): string | undefined {
  if (err instanceof AdapterFormatError) {
    const prefix = updates.find((u) => err.file.startsWith(`${updateLabel(u.clientId)}/`));
    return prefix?.clientId;
  }
  if (err instanceof MergeInputError && err.client !== undefined) return updates[err.client]?.clientId;
  return undefined;
}

/** A stored round result and how long the merge took. */
export interface RoundMergeOutcome {
  readonly stored: StoredAdapter;
  readonly result: RoundResult;
  readonly outcome: MergeOutcome;
}

/**
 * Mean normalised weight of each client over the merged modules (weights of
 * methods without per-client weights are uniform).
 */
export function meanClientWeights(outcome: MergeOutcome, clients: number): number[] {
  const sums = new Array<number>(clients).fill(0);
  let count = 0;
  for (const { result } of outcome.modules.values()) {
    const w = result.report.weights;
    if (w.length !== clients) continue;
    for (let i = 0; i < clients; i++) sums[i] += w[i];
    count++;
  }
  return sums.map((s) => (count === 0 ? 1 / clients : s / count));
}

/** What {@link mergeRound} needs. */
export interface MergeRoundArgs {
  readonly federation: Federation;
  readonly round: RoundRecord;
  readonly updates: readonly UpdateRecord[];
  readonly store: CoordinatorStore;
  readonly pool: MergeRunner;
  readonly now: () => number;
  /** Called after each merged module (telemetry). */
  readonly onModule?: ModuleCallback;
  /** Told about every client left out and every retried fault. */
  readonly onEvent?: (
    event:
      | { kind: "excluded"; clientId: string; reason: string; error: unknown }
      | { kind: "fault"; error: unknown; retryInMs: number },
  ) => void;
  /** Waits between fault retries (tests pass a fast one). */
  readonly sleep?: (ms: number) => Promise<void>;
  /** Whether to go on retrying after a fault (default: always); checked before each retry. */
  readonly keepTrying?: () => boolean;
}

/**
 * Merges `updates` of `round`, in client-id order (so the same updates give
 * the same bytes whatever order they were accepted in), and stores the result.
 * No single client can fail the round: when the merge fails because of one
 * client's update (its stored file unreadable, a module the merge cannot
 * use), that client is left out — recorded with the reason in the result —
 * and the rest are merged, as long as they still make the quorum. Transient
 * I/O faults (I/O errors, too many open files) are retried with backoff, a
 * full disk until space returns (every retry reported, so an operator hears
 * of it) unless `keepTrying` says stop. Anything else fails the round.
 *
 * @example
 * const { stored, result } = await mergeRound({ federation, round, updates, store, pool, now: Date.now });
 */
export async function mergeRound(args: MergeRoundArgs): Promise<RoundMergeOutcome> {
  const excluded: MergeExclusion[] = [];
  let updates = [...args.updates].sort((x, y) => (x.clientId < y.clientId ? -1 : 1));
  const quorum = Math.max(1, args.federation.policy.quorum);
  const sleep = args.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  for (let faults = 0; ; ) {
    try {
      return await mergeOnce({ ...args, updates }, excluded);
    } catch (err) {
      const culprit = culpritOf(err, updates);
      if (culprit !== undefined) {
        const reason = err instanceof Error ? err.message : String(err);
        excluded.push({ clientId: culprit, reason });
        args.onEvent?.({ kind: "excluded", clientId: culprit, reason, error: err });
        updates = updates.filter((u) => u.clientId !== culprit);
        if (updates.length < quorum) {
          throw new ClientsBelowQuorumError(
            `${excluded.length} update(s) could not be merged (${excluded.map((e) => e.clientId).join(", ")}); ${updates.length} left, below the quorum of ${quorum}`,
            { cause: err },
          );
        }
        continue;
      }
      if (isStorageFull(err) || (isTransientFault(err) && faults + 1 < MAX_FAULT_TRIES)) {
        faults++;
        const retryInMs = Math.min(60_000, 1000 * 2 ** (faults - 1));
        args.onEvent?.({ kind: "fault", error: err, retryInMs });
        await sleep(retryInMs);
        if (args.keepTrying?.() === false) {
          throw new MergeCalledOffError(
            `the merge of round ${args.round.number} was called off while retrying`,
            {
              cause: err,
            },
          );
        }
        continue;
      }
      throw err;
    }
  }
}

/**
 * Checks that a stored update still reads as intake measured it (rank and
 * scaling of every module); throws `AdapterFormatError` naming the client's
 * file otherwise, so the merge leaves that client out.
 */
function checkAgainstIntake(u: UpdateRecord, input: LazyAdapter): void {
  const file = `${updateLabel(u.clientId)}/adapter_model.safetensors`;
  for (const [name, rec] of Object.entries(u.modules ?? {})) {
    const plan = input.modules.get(name);
    const scalingDrift =
      plan === undefined ? 0 : Math.abs(plan.scaling - rec.scaling) / Math.max(Math.abs(rec.scaling), 1e-300);
    if (plan === undefined || plan.rank !== rec.rank || scalingDrift > 1e-9) {
      throw new AdapterFormatError(
        `${file}: module ${name} reads as ${plan === undefined ? "missing" : `rank ${plan.rank}, scaling ${plan.scaling}`}, but intake recorded rank ${rec.rank}, scaling ${rec.scaling}`,
        file,
      );
    }
  }
}

/** The median LoRA scaling over every module of every input (1 when there is none). */
function medianScaling(inputs: readonly LazyAdapter[]): number {
  const all = inputs.flatMap((i) => [...i.modules.values()].map((m) => m.scaling));
  return all.length === 0 ? 1 : median(all);
}

/**
 * Central DP for a round's merge: each update's clip factor from its
 * whole-adapter norm (intake's module norms; read again from the stored
 * factors for an update journaled without them) and a fresh secret noise key.
 */
async function centralDpOf(
  spec: PrivacySpec,
  round: RoundRecord,
  updates: readonly UpdateRecord[],
  inputs: readonly LazyAdapter[],
): Promise<{ readonly dp: CentralDp; readonly unclippedFraction?: number }> {
  const fromIntake = updates.map((u) =>
    u.modules === undefined ? undefined : Object.values(u.modules).reduce((s, m) => s + m.norm * m.norm, 0),
  );
  const norms2 = fromIntake.every((n) => n !== undefined)
    ? (fromIntake as number[])
    : await adapterNorms2(inputs);
  const clipNorm = round.clipNorm ?? spec.clipNorm;
  const noiseKey = newNoiseKey();
  const a = spec.adaptive;
  return {
    dp: {
      clipNorm,
      // With adaptive clipping the count's noise takes part of the privacy cost: the updates get z_Δ.
      noiseMultiplier:
        a === undefined
          ? spec.noiseMultiplier
          : updatesNoiseMultiplier(spec.noiseMultiplier, a.clippedCountStddev),
      clipFactors: clipFactors(norms2, clipNorm),
      noiseKey,
    },
    ...(a !== undefined
      ? {
          unclippedFraction: noisyUnclippedFraction(
            norms2.map((n) => Math.sqrt(n)),
            clipNorm,
            a.clippedCountStddev,
            noiseKey,
          ),
        }
      : {}),
  };
}

/** A client's update the federation's norm bound (`normBoundAction: reject`) left out of modules. */
export class NormBoundRejection extends Error {
  override readonly name = "NormBoundRejection";
}

/**
 * The clients a norm bound with `reject` left out of at least one module,
 * each with how many modules and its largest norm against the bound.
 */
export function normBoundExclusions(outcome: MergeOutcome, clients: readonly string[]): MergeExclusion[] {
  const hits = new Map<number, { modules: number; norm: number; bound: number }>();
  for (const entry of outcome.modules.values()) {
    for (const b of entry.result.report.bounded ?? []) {
      if (b.action !== "reject") continue;
      const h = hits.get(b.client) ?? { modules: 0, norm: 0, bound: b.bound };
      hits.set(b.client, {
        modules: h.modules + 1,
        norm: Math.max(h.norm, b.norm),
        bound: b.norm > h.norm ? b.bound : h.bound,
      });
    }
  }
  return [...hits]
    .sort(([a], [b]) => a - b)
    .map(([i, h]) => ({
      clientId: clients[i],
      reason: `norm bound: left out of ${h.modules} of ${outcome.modules.size} modules (‖Θ‖_F up to ${h.norm.toPrecision(4)}, bound ${h.bound.toPrecision(4)})`,
    }));
}

/**
 * A buffered round's fold (`buffered-rounds.ts`): the global adapter so far
 * (the last published round's, none before the first) and each update
 * scaled by `η s(τ_i) w_i`, summed by task arithmetic at the federation's
 * rank. The global adapter's reader joins `readers`, closed with them.
 */
async function foldInputs(
  args: MergeRoundArgs,
  buffered: BufferedRounds,
  updates: readonly LazyAdapter[],
  readers: { close(): Promise<void> }[],
): Promise<{ inputs: LazyAdapter[]; opts: MergeOptions; coefficients: number[] }> {
  const { federation, round, store } = args;
  const coefficients = foldCoefficients(buffered, args.updates);
  const inputs = updates.map((u, i) => scaledAdapter(u, coefficients[i]));
  const previous = [...(store.state().federations.get(federation.id)?.rounds.values() ?? [])]
    .map((e) => e.record)
    .filter((r) => r.number < round.number && r.resultHash !== undefined)
    .at(-1);
  if (previous !== undefined) {
    const handle = await store.adapterForRound(federation.id, previous.number);
    if (handle === undefined) {
      throw new Error(
        `the global adapter of round ${previous.number} (${previous.resultHash}) is not stored`,
      );
    }
    const global = await openStoredAdapter(handle, `global adapter of round ${previous.number}`);
    readers.push(global);
    inputs.unshift(global.lazy);
  }
  const opts = resolveOptions({
    method: "task-arithmetic",
    scale: 1,
    ...(federation.merge.rank !== undefined ? { rank: federation.merge.rank } : {}),
  });
  return { inputs, opts, coefficients };
}

/** One merge attempt of `args.updates`. */
async function mergeOnce(
  args: MergeRoundArgs,
  excluded: readonly MergeExclusion[],
): Promise<RoundMergeOutcome> {
  const { federation, round, updates, store, pool } = args;
  if (updates.length === 0)
    throw new Error(`federation "${federation.id}" round ${round.number}: no updates to merge`);
  const readers: Pick<UpdateReader, "close">[] = [];
  try {
    const inputs: LazyAdapter[] = [];
    for (const u of updates) {
      const reader = await store.openUpdate(u.federationId, u.round, u.clientId);
      readers.push(reader);
      const input = lazyAdapter(
        u.configJson,
        reader.tensors,
        (name) => reader.read(name),
        updateLabel(u.clientId),
        reader.path === undefined ? undefined : placesIn(reader.path, reader.tensors),
      );
      checkAgainstIntake(u, input);
      inputs.push(input);
    }
    const buffered = federation.policy.buffered;
    const fold = buffered === undefined ? undefined : await foldInputs(args, buffered, inputs, readers);
    const base = mergeOptionsFor(
      federation,
      updates.map((u) => u.samples),
    );
    const dp =
      federation.privacy === undefined
        ? undefined
        : await centralDpOf(federation.privacy, round, updates, inputs);
    const opts = fold?.opts ?? (dp === undefined ? base : { ...base, dp: dp.dp });
    const outcome = await mergeLazyAdapters(fold?.inputs ?? inputs, opts, pool, args.onModule);
    const clients = updates.map((u) => u.clientId);
    const weights = fold?.coefficients ?? meanClientWeights(outcome, clients.length);
    const mergedAt = args.now();
    const layout = canonicalLayout(federation, medianScaling(inputs));
    const metadata = {
      [RESULT_METADATA.federation]: federation.id,
      [RESULT_METADATA.round]: String(round.number),
      [RESULT_METADATA.method]: federation.merge.method,
      [RESULT_METADATA.clients]: JSON.stringify(clients),
      [RESULT_METADATA.weights]: JSON.stringify(weights),
      ...(excluded.length > 0 ? { [RESULT_METADATA.excluded]: JSON.stringify(excluded) } : {}),
    };
    const { configText, safetensors } = encodeAdapter(
      mergedOutput(layout, outcome, canonicalDtype(federation), metadata),
    );
    // The rank variants first: the round's adapter record is what makes it merged.
    const rankVariants: AdapterRankVariant[] = [];
    // Folding clients take each round's whole delta into their base: no variants for them.
    for (const rank of federation.policy.foldIntoBase === true ? [] : variantRanks(updates, outcome)) {
      const variant = encodeAdapter(
        mergedOutput(layout, truncatedOutcome(outcome, rank), canonicalDtype(federation), {
          ...metadata,
          [RESULT_METADATA.rankVariant]: String(rank),
        }),
      );
      const v = await store.putAdapter({
        federationId: federation.id,
        round: round.number,
        rank,
        configJson: variant.configText,
        safetensors: variant.safetensors,
      });
      rankVariants.push({ rank, contentHash: v.contentHash, size: v.size });
    }
    const stored = await store.putAdapter({
      federationId: federation.id,
      round: round.number,
      configJson: configText,
      safetensors,
    });
    // Updates the norm bound left out of modules: shown to operators, not in the adapter.
    const bounded = fold === undefined ? normBoundExclusions(outcome, clients) : [];
    for (const b of bounded) {
      args.onEvent?.({
        kind: "excluded",
        clientId: b.clientId,
        reason: b.reason,
        error: new NormBoundRejection(b.reason),
      });
    }
    const leftOut = [...excluded, ...bounded];
    const result: RoundResult = {
      federationId: federation.id,
      round: round.number,
      contentHash: stored.contentHash,
      size: stored.size,
      method: federation.merge.method,
      clients,
      weights,
      mergedAt,
      ...(rankVariants.length > 0 ? { rankVariants, mergedRank: outcomeRank(outcome) } : {}),
      ...(leftOut.length > 0 ? { excluded: leftOut } : {}),
      ...(dp !== undefined ? { clipped: dp.dp.clipFactors.filter((f) => f < 1).length } : {}),
      ...(dp?.unclippedFraction !== undefined ? { unclippedFraction: dp.unclippedFraction } : {}),
      ...(dp !== undefined && federation.privacy?.reproducible === true ? { noiseKey: dp.dp.noiseKey } : {}),
    };
    return { stored, result, outcome };
  } finally {
    await Promise.all(readers.map((r) => r.close()));
  }
}
