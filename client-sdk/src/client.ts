/**
 * `connect()` and the {@link TributaryClient} it returns: one training node's
 * session with a coordinator — join a federation, follow its rounds, fetch
 * the global adapter (NATS first, gRPC as the fallback, always verified),
 * submit updates (chunked, retried, resumed).
 */
import { create } from "@bufbuild/protobuf";
import {
  adapterForRank,
  Dtype,
  type Federation,
  HeartbeatRequestSchema,
  idProblem,
  JoinRequestSchema,
} from "@tributary/protocol";
import { type AdapterFiles, adapterRank, readAdapter, verifyAdapter } from "./adapter-files.ts";
import type { JoinSchema } from "./adapter-schema.ts";
import { type Channel, openChannel, type TlsOptions, unary } from "./channel.ts";
import { downloadAdapter, fetchAdapterInfo } from "./download.ts";
import { NotFoundError, RoundFailedError, TributaryError } from "./errors.ts";
import { privatizeAdapter } from "./local-dp.ts";
import { type NatsResults, openNatsResults } from "./nats/nats-results.ts";
import { type RetryOptions, resolveRetry, withRetry } from "./retry.ts";
import { openRoundFeed, type RoundFeed } from "./round-feed.ts";
import { isTerminal, type RoundInfo, roundFromProto } from "./round-info.ts";
import { roundStream } from "./round-stream.ts";
import { type SubmitOptions, type SubmitResult, uploadUpdate } from "./upload.ts";
import { type Waiting, waitingOf } from "./waiting.ts";

/** Options of {@link connect}. */
export interface ConnectOptions {
  /**
   * The coordinator's gRPC endpoint, `host:port`; several coordinators sharing
   * one store as `ip:port,ip:port` (the client moves to the next when one dies).
   */
  readonly coordinator: string;
  /** This client's enrollment token (from `tributary admin enroll`); `""` with a client certificate (`tls.cert`) alone. */
  readonly token: string;
  /** NATS server URL(s) the coordinator announces results on; absent = download over gRPC only. */
  readonly nats?: string | readonly string[];
  /** Connect over TLS: `ca` = the CA to trust; `cert`/`key` = a client certificate for mutual TLS. */
  readonly tls?: TlsOptions;
  /** How transient failures are retried. */
  readonly retry?: RetryOptions;
  /** How long to wait for a round's NATS announcement before downloading over gRPC (default 5000 ms). */
  readonly natsWaitMs?: number;
}

/** What `join` returns. */
export interface JoinResult {
  /** The client id the token was enrolled under. */
  readonly clientId: string;
  /** The federation's configuration (schema, merge method, round policy). */
  readonly federation: Federation;
  /** The latest round, if one was ever started. */
  readonly currentRound?: RoundInfo;
  /** The federation's method weights updates by sample counts: `submit` needs `samples`. */
  readonly weightsBySamples: boolean;
  /** Why no round is open, when none is (e.g. "1 of 2 clients connected; a round opens when 2 are"). */
  readonly waitingReason?: string;
}

/** A merged (global) adapter, verified against its content hash. */
export interface GlobalAdapter extends AdapterFiles {
  /** The round that produced it. */
  readonly round: number;
  /** Hex sha256 of `safetensors`. */
  readonly contentHash: string;
  /** Where the bytes came from. */
  readonly source: "nats" | "grpc";
  /** When it is a rank variant of the round's merged adapter (FlexLoRA): its rank. */
  readonly rank?: number;
}

/** Which merged adapter to fetch: a round's (default: the latest), at which rank. */
export interface AdapterChoice {
  readonly round?: number;
  /**
   * The rank to receive the round's merged update at: its rank variant of
   * that rank, where the coordinator kept one (clients training at
   * different ranks), else the merged adapter. Default: the rank of the last
   * adapter this client submitted; 0 = the whole merged adapter.
   */
  readonly rank?: number;
}

/** Options of the calls that wait. */
export interface WaitOptions {
  readonly signal?: AbortSignal;
  /**
   * Called every `waitingEveryMs` while the call waits (first after a
   * second): the latest round, updates against the quorum, the cohort still
   * to submit, the time to the deadline, or why no round is open.
   * `describeWaiting` makes a line of it.
   */
  readonly onWaiting?: (waiting: Waiting) => void;
  /** Interval of `onWaiting` reports (default 5000 ms). */
  readonly waitingEveryMs?: number;
  /** Called as a merged adapter's bytes arrive over gRPC (a NATS download arrives whole). */
  readonly onDownload?: (received: number, total: number) => void;
}

/** One training node's session with a coordinator. Create it with {@link connect}. */
export interface TributaryClient {
  /** The client id, once joined. */
  readonly clientId: string | undefined;
  /** The federation joined, once joined. */
  readonly federationId: string | undefined;
  /**
   * Joins a federation (one per client): the coordinator checks `schema`, if
   * given, against the federation's, and counts this client as connected
   * while the session lasts (a round watch stays open, reopened if it drops).
   */
  join(federationId: string, schema?: JoinSchema): Promise<JoinResult>;
  /** The latest round seen (after `join`). */
  currentRound(): RoundInfo | undefined;
  /** Every round change from now on, starting with the latest round seen; ends on `close()` or abort. */
  rounds(options?: WaitOptions): AsyncIterableIterator<RoundInfo>;
  /**
   * The next OPEN round whose cohort includes this client and that it has not
   * submitted to in this session (the current one if it qualifies), numbered
   * above `after`.
   */
  nextRound(options?: WaitOptions & { readonly after?: number }): Promise<RoundInfo>;
  /**
   * The merged adapter of the latest PUBLISHED round, or of `round`: from NATS
   * when configured and announced, otherwise over gRPC.
   *
   * @throws {NotFoundError} when no (such) round is published.
   * @throws {IntegrityError} when the bytes do not hash to the round's content hash.
   */
  globalAdapter(options?: WaitOptions & AdapterChoice): Promise<GlobalAdapter>;
  /**
   * Waits for `round` to be PUBLISHED and returns its merged adapter.
   *
   * @throws {RoundFailedError} when the round fails or is aborted.
   */
  waitForResult(round: number, options?: WaitOptions & Pick<AdapterChoice, "rank">): Promise<GlobalAdapter>;
  /**
   * Submits an update for `round`: a PEFT adapter directory, or its files in
   * memory. Resolves once the coordinator has durably stored it.
   *
   * `options.samples` is required when the federation weights updates by
   * sample counts (`JoinResponse.weights_by_samples`: FedAvg, FedIT, the
   * geometric median); otherwise a missing count is sent as 0.
   *
   * @throws {StaleRoundError} when the round is not open; `TributaryError`
   *   `SAMPLES_REQUIRED` when the federation needs a sample count and none
   *   was given; other `TributaryError`s for other refusals.
   */
  submit(round: number, adapter: string | AdapterFiles, options?: SubmitOptions): Promise<SubmitResult>;
  /**
   * Ends the session: closes the round watch, NATS and the channel. The
   * coordinator counts the client as connected for its liveness timeout
   * (`JoinResponse.liveness_timeout`, default 60 s) after the watch closes;
   * `stayJoined: true` sends a `Heartbeat` first, so that time starts now.
   * The CLI does this, since its separate commands form one session.
   */
  close(options?: { readonly stayJoined?: boolean }): Promise<void>;
}

const DTYPES = { F32: Dtype.F32, F16: Dtype.F16, BF16: Dtype.BF16 } as const;

/**
 * Opens a session with a coordinator (nothing is sent until `join`).
 *
 * @example
 * const client = connect({ coordinator: "coordinator:7070", token: process.env.TRIBUTARY_TOKEN!, nats: "nats://coordinator:4222" });
 * await client.join("support-bot");
 * for (;;) {
 *   const round = await client.nextRound();
 *   const global = round.number > 1 ? await client.globalAdapter() : null;
 *   const adapterDir = await train(global);               // your trainer
 *   await client.submit(round.number, adapterDir, { samples: 1200, metrics: { loss: 0.42 } });
 *   await client.waitForResult(round.number);
 * }
 */
export function connect(options: ConnectOptions): TributaryClient {
  const retry = resolveRetry(options.retry);
  const channel: Channel = openChannel(options.coordinator, options.token, options.tls);
  const natsWaitMs = options.natsWaitMs ?? 5_000;
  const submitted = new Set<number>();
  let joined:
    | { federationId: string; clientId: string; feed: RoundFeed; weightsBySamples: boolean }
    | undefined;
  let nats: Promise<NatsResults | undefined> | undefined;
  let closed = false;

  /** `wait`, with `opts.onWaiting` told every few seconds what it waits on (from a heartbeat). */
  const reportWhileWaiting = <T>(
    what: "round" | "result",
    awaitedRound: number | undefined,
    opts: WaitOptions,
    wait: Promise<T>,
  ): Promise<T> => {
    const hook = opts.onWaiting;
    if (hook === undefined) return wait;
    const { federationId } = session();
    let done = false;
    const tick = async (): Promise<void> => {
      try {
        const res = await unary(channel, "heartbeat", create(HeartbeatRequestSchema, { federationId }));
        const round = res.currentRound === undefined ? undefined : roundFromProto(res.currentRound);
        const snap = {
          quorum: res.quorum,
          reason: res.waitingReason,
          ...(round !== undefined ? { round } : {}),
        };
        if (!done) hook(waitingOf(what, awaitedRound, snap, Date.now()));
      } catch {
        // Not reported: the wait itself fails, or carries on, on its own.
      }
    };
    const every = Math.max(100, opts.waitingEveryMs ?? 5000);
    const first = setTimeout(() => void tick(), Math.min(1000, every));
    const timer = setInterval(() => void tick(), every);
    return wait.finally(() => {
      done = true;
      clearTimeout(first);
      clearInterval(timer);
    });
  };
  const session = () => {
    if (joined === undefined) throw new TributaryError("NOT_JOINED", "call join(federationId) first");
    return joined;
  };

  /** The round and content hash of the adapter asked for. */
  /** The rank of the last adapter submitted (the client's rank), for `AdapterChoice.rank`'s default. */
  let myRank: number | undefined;
  const target = async (
    federationId: string,
    feed: RoundFeed,
    round: number | undefined,
    rank: number | undefined,
    signal?: AbortSignal,
  ): Promise<{ round: number; contentHash: string; rank?: number }> => {
    const known = round === undefined ? undefined : feed.round(round);
    if (known?.state === "published" && known.resultContentHash !== undefined) {
      const pick = adapterForRank(
        {
          contentHash: known.resultContentHash,
          size: 0,
          ...(known.rankVariants ? { rankVariants: known.rankVariants } : {}),
          ...(known.mergedRank !== undefined ? { mergedRank: known.mergedRank } : {}),
        },
        rank,
      );
      if (pick === undefined) {
        throw new TributaryError(
          "RANK_VARIANT_NOT_FOUND",
          `round ${known.number} has no adapter of rank ${rank}: its rank variants are ${(known.rankVariants ?? []).map((v) => v.rank).join(", ")} (rank 0 = the whole merged adapter)`,
        );
      }
      return {
        round: known.number,
        contentHash: pick.contentHash,
        ...(pick.rank !== undefined ? { rank: pick.rank } : {}),
      };
    }
    const sel = { ...(round === undefined ? {} : { round }), ...(rank !== undefined ? { rank } : {}) };
    const info = await fetchAdapterInfo(channel, retry, federationId, sel, signal);
    return { round: info.round, contentHash: info.contentHash };
  };

  const client: TributaryClient = {
    get clientId() {
      return joined?.clientId;
    },
    get federationId() {
      return joined?.federationId;
    },

    async join(federationId, schema = {}) {
      if (closed) throw new TributaryError("CLOSED", "the client was closed");
      const badId = idProblem("federation_id", federationId);
      if (badId !== undefined) throw new TributaryError("INVALID_ARGUMENT", badId);
      if (joined !== undefined && joined.federationId !== federationId) {
        throw new TributaryError(
          "ALREADY_JOINED",
          `this client joined "${joined.federationId}"; connect() again for "${federationId}"`,
        );
      }
      const req = create(JoinRequestSchema, {
        federationId,
        baseModelId: schema.baseModelId ?? "",
        modules: (schema.modules ?? []).map((m) => ({ ...m })),
        dtype: schema.dtype === undefined ? Dtype.UNSPECIFIED : DTYPES[schema.dtype],
      });
      const res = await withRetry(`join ${federationId}`, retry, () => unary(channel, "join", req));
      const current = res.currentRound === undefined ? undefined : roundFromProto(res.currentRound);
      if (joined === undefined) {
        joined = {
          federationId,
          clientId: res.clientId,
          feed: openRoundFeed(channel, federationId, retry),
          weightsBySamples: res.weightsBySamples,
        };
        if (options.nats !== undefined) {
          nats = openNatsResults(options.nats, federationId).catch(() => undefined);
        }
      }
      joined.weightsBySamples = res.weightsBySamples;
      if (current !== undefined && joined.feed.round(current.number) === undefined) joined.feed.note(current);
      return {
        clientId: res.clientId,
        federation: res.federation!,
        ...(current !== undefined ? { currentRound: current } : {}),
        weightsBySamples: res.weightsBySamples,
        ...(res.waitingReason !== "" ? { waitingReason: res.waitingReason } : {}),
      };
    },

    currentRound: () => joined?.feed.current(),

    rounds(opts = {}) {
      return roundStream(session().feed, opts.signal);
    },

    nextRound(opts = {}) {
      const { feed, clientId } = session();
      const after = opts.after ?? 0;
      return reportWhileWaiting(
        "round",
        undefined,
        opts,
        feed.waitFor(
          (r) =>
            r.state === "open" &&
            r.number > after &&
            // An empty cohort (buffered rounds) is open to every enrolled client.
            (r.cohort.length === 0 || r.cohort.includes(clientId)) &&
            !submitted.has(r.number),
          opts.signal,
        ),
      );
    },

    async globalAdapter(opts = {}) {
      const { federationId, feed } = session();
      const want = await target(federationId, feed, opts.round, opts.rank ?? myRank, opts.signal);
      const results = await nats;
      if (results !== undefined) {
        const a = await results.fetch(want.round, want.contentHash, natsWaitMs, opts.signal);
        if (a !== undefined) {
          verifyAdapter(a.safetensors, want.contentHash, `adapter of round ${want.round} from NATS`);
          return { ...want, configJson: a.configJson, safetensors: a.safetensors, source: "nats" };
        }
      }
      const d = await downloadAdapter(
        channel,
        retry,
        federationId,
        { contentHash: want.contentHash },
        opts.signal,
        opts.onDownload,
      );
      verifyAdapter(d.safetensors, want.contentHash, `adapter of round ${want.round} over gRPC`);
      return { ...want, configJson: d.configJson, safetensors: d.safetensors, source: "grpc" };
    },

    async waitForResult(round, opts = {}) {
      const { feed } = session();
      const r = await reportWhileWaiting(
        "result",
        round,
        opts,
        feed.waitFor((x) => (x.number === round && isTerminal(x.state)) || x.number > round, opts.signal),
      );
      if (r.number === round && r.state !== "published") {
        throw new RoundFailedError(
          round,
          r.state === "aborted" ? "aborted" : "failed",
          r.failureReason ?? "",
        );
      }
      try {
        return await client.globalAdapter({ round, ...opts });
      } catch (err) {
        // A later round is running and this one has no adapter: it ended while we were not watching.
        if (err instanceof NotFoundError && err.reason !== "RANK_VARIANT_NOT_FOUND") {
          throw new RoundFailedError(round, "unknown", "");
        }
        throw err;
      }
    },

    async submit(round, adapter, submitOptions = {}) {
      const { federationId, clientId, weightsBySamples } = session();
      if (submitOptions.samples === undefined && weightsBySamples) {
        throw new TributaryError(
          "SAMPLES_REQUIRED",
          `federation "${federationId}" weights updates by their training sample counts: pass submit(round, adapter, { samples: N })`,
        );
      }
      const read = typeof adapter === "string" ? await readAdapter(adapter) : adapter;
      const rank = adapterRank(read.configJson);
      // Local DP: clipped and noised here, so only the noised update leaves the node.
      const dp =
        submitOptions.localDp === undefined ? undefined : privatizeAdapter(read, submitOptions.localDp);
      const res = await uploadUpdate(channel, retry, {
        federationId,
        clientId,
        round,
        adapter: dp?.files ?? read,
        options: submitOptions,
      });
      submitted.add(round);
      // Buffered rounds fold an update in the round open when it arrived.
      submitted.add(res.round);
      if (rank !== undefined) myRank = rank;
      return dp === undefined ? res : { ...res, localDp: dp.report };
    },

    async close(opts = {}) {
      if (closed) return;
      closed = true;
      joined?.feed.close();
      await (await nats)?.close();
      try {
        if (opts.stayJoined === true && joined !== undefined) {
          const req = create(HeartbeatRequestSchema, { federationId: joined.federationId });
          await withRetry(`heartbeat ${joined.federationId}`, retry, () => unary(channel, "heartbeat", req));
        }
      } finally {
        channel.close();
      }
    },
  };
  return client;
}
