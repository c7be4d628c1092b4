/**
 * The one-call hook: hand over a training function and the SDK runs the
 * federated loop around it — next round, global adapter, train, submit,
 * wait for the merge — round after round.
 */
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type AdapterFiles, writeAdapter } from "./adapter-files.ts";
import type { JoinSchema } from "./adapter-schema.ts";
import type { GlobalAdapter, TributaryClient } from "./client.ts";
import { NotFoundError, RoundFailedError, StaleRoundError } from "./errors.ts";
import type { RoundInfo } from "./round-info.ts";
import type { SubmitResult, UploadProgress } from "./upload.ts";

/** What the training function returns: the adapter it trained and what is reported with it. */
export interface TrainResult {
  /** A PEFT adapter directory (`save_pretrained` output), or its files in memory. */
  readonly adapterDir: string | AdapterFiles;
  /** Training samples used (the FedAvg weight). */
  readonly samples: number;
  readonly metrics?: Readonly<Record<string, number>>;
}

/** What the round loop knows for the training function beyond the global adapter. */
export interface TrainContext {
  /**
   * In a federation that folds into the base (`RoundPolicy.fold_into_base`,
   * FLoRA): every merged adapter so far, as PEFT directories in round order.
   * Merge each into the base weights (PEFT: load it, `merge_and_unload()`),
   * then train fresh LoRA factors on top; empty otherwise.
   */
  readonly folded: readonly string[];
}

/** What happened in one round. */
export interface RoundOutcome {
  readonly round: number;
  /** The coordinator's acknowledgement (absent if the round closed before the update got in). */
  readonly submitted?: SubmitResult;
  /** The merged adapter, when the round published. */
  readonly result?: GlobalAdapter;
  /** Why the round gave no result for this client (failed, aborted, closed before submitting). */
  readonly error?: Error;
}

/** Options of {@link runFederated}. */
export interface RunFederatedOptions {
  /** A client from `connect()` (joined here if it has not joined yet). */
  readonly client: TributaryClient;
  readonly federationId: string;
  /** Passed to `join` when the client has not joined yet. */
  readonly schema?: JoinSchema;
  /**
   * Trains one round. `globalAdapterDir` is a PEFT directory holding the latest
   * merged adapter, or `null` when none is published yet (the first round)
   * or the federation folds into the base (`context.folded`).
   */
  readonly train: (
    globalAdapterDir: string | null,
    round: RoundInfo,
    context: TrainContext,
  ) => Promise<TrainResult>;
  /** Rounds to take part in (default: until `signal` aborts). */
  readonly rounds?: number;
  /** Where global adapters are written, as `<workDir>/global-round-<n>/` (default: a new temp dir). */
  readonly workDir?: string;
  readonly signal?: AbortSignal;
  /** Called after each round. */
  readonly onRound?: (outcome: RoundOutcome) => void;
  /** Upload progress of each submit. */
  readonly onProgress?: (progress: UploadProgress) => void;
}

/**
 * Runs the federated loop around `train` for `rounds` rounds: waits for a
 * round this client is selected for, writes the latest global adapter to a
 * directory, trains, submits, and waits for the round's merge. A round that
 * fails, is aborted, or closes before the update got in is reported (in the
 * outcome's `error`) and the loop goes on with the next one.
 *
 * @example
 * const client = connect({ coordinator: "coordinator:7070", token });
 * await runFederated({
 *   client,
 *   federationId: "support-bot",
 *   rounds: 10,
 *   train: async (globalDir, round) => {
 *     const adapterDir = await fineTune({ init: globalDir, out: `out/round-${round.number}` });
 *     return { adapterDir, samples: 1200, metrics: { loss: 0.42 } };
 *   },
 * });
 * await client.close();
 */
export async function runFederated(options: RunFederatedOptions): Promise<RoundOutcome[]> {
  const { client, signal } = options;
  const joined = await client.join(options.federationId, options.schema);
  const fold = joined.federation.policy?.foldIntoBase === true;
  const workDir = options.workDir ?? (await mkdtemp(join(tmpdir(), "tributary-global-")));
  const outcomes: RoundOutcome[] = [];
  let after = 0;
  let global: { hash: string; dir: string } | undefined;
  const folded: string[] = [];
  let foldedUpTo = 0;
  while (options.rounds === undefined || outcomes.length < options.rounds) {
    signal?.throwIfAborted();
    const round = await client.nextRound({ after, ...(signal !== undefined ? { signal } : {}) });
    after = round.number;
    if (fold) {
      // Every merged adapter before this round, in order (failed rounds have none).
      for (; foldedUpTo < round.number - 1; foldedUpTo++) {
        const dir = await fetchRound(
          client,
          foldedUpTo + 1,
          join(workDir, `folded-round-${foldedUpTo + 1}`),
          signal,
        );
        if (dir !== undefined) folded.push(dir);
      }
    } else {
      global = await latestGlobal(client, workDir, global, signal !== undefined ? { signal } : {});
    }
    const trained = await options.train(global?.dir ?? null, round, { folded: [...folded] });
    let outcome: RoundOutcome;
    try {
      const submitted = await client.submit(round.number, trained.adapterDir, {
        samples: trained.samples,
        ...(trained.metrics !== undefined ? { metrics: trained.metrics } : {}),
        ...(options.onProgress !== undefined ? { onProgress: options.onProgress } : {}),
        ...(signal !== undefined ? { signal } : {}),
      });
      try {
        const result = await client.waitForResult(round.number, {
          ...(signal !== undefined ? { signal } : {}),
          // Folding clients take the round's whole merged delta into their base.
          ...(fold ? { rank: 0 } : {}),
        });
        outcome = { round: round.number, submitted, result };
      } catch (err) {
        if (!(err instanceof RoundFailedError)) throw err;
        outcome = { round: round.number, submitted, error: err };
      }
    } catch (err) {
      if (!(err instanceof StaleRoundError)) throw err;
      outcome = { round: round.number, error: err };
    }
    outcomes.push(outcome);
    options.onRound?.(outcome);
  }
  return outcomes;
}

/**
 * The latest merged adapter as a PEFT directory `<workDir>/global-round-<n>/`
 * (written when it is new; `known` when it is not), or `known` (`undefined`
 * at first) while none is published: the first round trains from scratch.
 */
async function latestGlobal(
  client: TributaryClient,
  workDir: string,
  known: { hash: string; dir: string } | undefined,
  opts: { readonly signal?: AbortSignal; readonly rank?: number },
): Promise<{ hash: string; dir: string } | undefined> {
  try {
    const latest = await client.globalAdapter(opts);
    if (known?.hash === latest.contentHash) return known;
    const dir = join(workDir, `global-round-${latest.round}`);
    await writeAdapter(dir, latest);
    return { hash: latest.contentHash, dir };
  } catch (err) {
    if (!(err instanceof NotFoundError)) throw err;
    return known;
  }
}

/** Writes round `n`'s whole merged adapter to `dir`; `undefined` when the round has none. */
async function fetchRound(
  client: TributaryClient,
  n: number,
  dir: string,
  signal: AbortSignal | undefined,
): Promise<string | undefined> {
  try {
    await writeAdapter(
      dir,
      await client.globalAdapter({ round: n, rank: 0, ...(signal !== undefined ? { signal } : {}) }),
    );
    return dir;
  } catch (err) {
    if (err instanceof NotFoundError) return undefined;
    throw err;
  }
}

/** Options of {@link runBuffered}: those of {@link runFederated}, with `updates` instead of `rounds`. */
export interface RunBufferedOptions extends Omit<RunFederatedOptions, "rounds" | "onRound"> {
  /** Updates to send (default: until `signal` aborts). */
  readonly updates?: number;
  /** Called after each update. */
  readonly onUpdate?: (outcome: RoundOutcome) => void;
}

/**
 * The asynchronous loop of a federation with buffered rounds
 * (`RoundPolicy.buffered`, FedBuff): fetch the latest global adapter, train
 * from it, submit naming the round that was open when it was fetched, and
 * start again at once, without waiting for the merge. The coordinator folds
 * each full buffer into the global adapter, weighing each update by its
 * staleness; an update past the federation's max staleness is refused, and
 * reported in its outcome's `error`.
 *
 * @example
 * await runBuffered({
 *   client, federationId: "edge-fleet", updates: 50,
 *   train: async (globalDir) => ({ adapterDir: await fineTune({ init: globalDir }), samples: 300 }),
 * });
 */
export async function runBuffered(options: RunBufferedOptions): Promise<RoundOutcome[]> {
  const { client, signal } = options;
  if (client.federationId === undefined) await client.join(options.federationId, options.schema);
  const workDir = options.workDir ?? (await mkdtemp(join(tmpdir(), "tributary-global-")));
  const outcomes: RoundOutcome[] = [];
  let global: { hash: string; dir: string } | undefined;
  const waitOpts = signal !== undefined ? { signal } : {};
  while (options.updates === undefined || outcomes.length < options.updates) {
    signal?.throwIfAborted();
    // The open round this client has not sent to yet: the version its update starts from.
    const round = await client.nextRound(waitOpts);
    // The whole global adapter: this node trains fresh factors on top of it.
    global = await latestGlobal(client, workDir, global, { ...waitOpts, rank: 0 });
    const trained = await options.train(global?.dir ?? null, round, { folded: [] });
    let outcome: RoundOutcome;
    try {
      const submitted = await client.submit(round.number, trained.adapterDir, {
        samples: trained.samples,
        ...(trained.metrics !== undefined ? { metrics: trained.metrics } : {}),
        ...(options.onProgress !== undefined ? { onProgress: options.onProgress } : {}),
        ...waitOpts,
      });
      outcome = { round: submitted.round, submitted };
    } catch (err) {
      if (!(err instanceof StaleRoundError)) throw err;
      outcome = { round: round.number, error: err };
    }
    outcomes.push(outcome);
    options.onUpdate?.(outcome);
  }
  return outcomes;
}
