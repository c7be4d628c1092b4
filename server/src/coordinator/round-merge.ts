/**
 * Merging a closed round: the accepted updates are read back from the store
 * module by module (never whole), merged with the federation's method on the
 * merge pool, encoded as a PEFT adapter in the federation's canonical form
 * (`canonical-output.ts`: names, layout and config from the schema, nothing
 * from a client) and stored content-addressed. The
 * per-client merge weights travel inside the adapter's safetensors metadata,
 * so they survive restarts with the adapter itself.
 */
import type { MergePool } from "../compute/merge-pool.ts";
import type { Federation, RoundRecord, RoundResult, UpdateRecord } from "../core/model.ts";
import type { CoordinatorStore, StoredAdapter, UpdateReader } from "../core/store.ts";
import { encodeAdapter, type LazyAdapter, lazyAdapter } from "../peft/index.ts";
import { type MergeOutcome, type ModuleCallback, mergeLazyAdapters } from "../pipeline/merge-adapters.ts";
import { mergedOutput } from "../pipeline/merged-output.ts";
import { updateLabel } from "./adapter-schema.ts";
import { canonicalDtype, canonicalLayout } from "./canonical-output.ts";
import { mergeOptionsFor } from "./federation-config.ts";

/** Metadata keys of a merged adapter written by the coordinator. */
export const RESULT_METADATA = {
  federation: "tributary_federation",
  round: "tributary_round",
  method: "tributary_method",
  clients: "tributary_clients",
  weights: "tributary_weights",
  mergedAt: "tributary_merged_at",
} as const;

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

/**
 * Merges `updates` (sorted by client id) of `round` and stores the result.
 *
 * @example
 * const { stored, result } = await mergeRound({ federation, round, updates, store, pool, now: Date.now });
 */
export async function mergeRound(args: {
  federation: Federation;
  round: RoundRecord;
  updates: readonly UpdateRecord[];
  store: CoordinatorStore;
  pool: MergePool;
  now: () => number;
  /** Called after each merged module (telemetry). */
  onModule?: ModuleCallback;
}): Promise<RoundMergeOutcome> {
  const { federation, round, updates, store, pool } = args;
  if (updates.length === 0)
    throw new Error(`federation "${federation.id}" round ${round.number}: no updates to merge`);
  const readers: UpdateReader[] = [];
  try {
    const inputs: LazyAdapter[] = [];
    for (const u of updates) {
      const reader = await store.openUpdate(u.federationId, u.round, u.clientId);
      readers.push(reader);
      inputs.push(
        lazyAdapter(u.configJson, reader.tensors, (name) => reader.read(name), updateLabel(u.clientId)),
      );
    }
    const opts = mergeOptionsFor(
      federation,
      updates.map((u) => u.samples),
    );
    const outcome = await mergeLazyAdapters(inputs, opts, pool, args.onModule);
    const clients = updates.map((u) => u.clientId);
    const weights = meanClientWeights(outcome, clients.length);
    const mergedAt = args.now();
    const { configText, safetensors } = encodeAdapter(
      mergedOutput(canonicalLayout(federation), outcome, canonicalDtype(federation), {
        [RESULT_METADATA.federation]: federation.id,
        [RESULT_METADATA.round]: String(round.number),
        [RESULT_METADATA.method]: federation.merge.method,
        [RESULT_METADATA.clients]: JSON.stringify(clients),
        [RESULT_METADATA.weights]: JSON.stringify(weights),
        [RESULT_METADATA.mergedAt]: String(mergedAt),
      }),
    );
    const stored = await store.putAdapter({
      federationId: federation.id,
      round: round.number,
      configJson: configText,
      safetensors,
    });
    const result: RoundResult = {
      federationId: federation.id,
      round: round.number,
      contentHash: stored.contentHash,
      size: stored.size,
      method: federation.merge.method,
      clients,
      weights,
      mergedAt,
    };
    return { stored, result, outcome };
  } finally {
    await Promise.all(readers.map((r) => r.close()));
  }
}

/** Rebuilds a round's `RoundResult` from its stored adapter's metadata (after a restart). */
export function resultFromMetadata(
  federation: Federation,
  round: RoundRecord,
  stored: StoredAdapter,
  metadata: Readonly<Record<string, string>>,
): RoundResult {
  const parse = (key: string): unknown => {
    try {
      return JSON.parse(metadata[key] ?? "[]");
    } catch {
      return [];
    }
  };
  const clients = parse(RESULT_METADATA.clients);
  const weights = parse(RESULT_METADATA.weights);
  return {
    federationId: federation.id,
    round: round.number,
    contentHash: stored.contentHash,
    size: stored.size,
    method: federation.merge.method,
    clients: Array.isArray(clients) ? clients.map(String) : [],
    weights: Array.isArray(weights) ? weights.map(Number) : [],
    mergedAt: Number(metadata[RESULT_METADATA.mergedAt] ?? round.closedAt ?? 0),
  };
}
