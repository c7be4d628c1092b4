/**
 * The coordinator: one object that owns the store, a round scheduler per
 * federation, the merge pool and the publish outbox, and offers the
 * operations the RPC edge exposes. Transport-free: it takes client identities
 * already authenticated and raises typed errors that the edge maps to gRPC
 * statuses once.
 */
import { idProblem } from "@tributary/protocol";
import { type Clock, systemClock } from "../core/clock.ts";
import { type Log, silentLog } from "../core/log.ts";
import type { MergeRunner } from "../core/merge-runner.ts";
import type { ClientRecord, Federation, RoundRecord, RoundResult, UpdateRecord } from "../core/model.ts";
import type { ResultPublisher } from "../core/publisher.ts";
import type { CoordinatorStore, StoreState, UploadKey, UploadStatus } from "../core/store.ts";
import { noopTelemetry, type Telemetry } from "../core/telemetry.ts";
import {
  FederationConfigError,
  FederationExistsError,
  UnknownFederationError,
  UnknownRoundError,
} from "./errors.ts";
import { validateFederation } from "./federation-config.ts";
import { createResultPublishing, type ResultPublishing, readResultMetadata } from "./result-publishing.ts";
import { mergeRound } from "./round-merge.ts";
import { createRoundScheduler } from "./round-scheduler.ts";
import type { RoundScheduler } from "./round-scheduler-types.ts";
import { receiveUpdate, type SubmitHeader, type SubmitOutcome } from "./update-intake.ts";

/** A round change delivered to watchers. */
export interface RoundEvent {
  readonly round: RoundRecord;
  readonly acceptedUpdates: number;
}

/** What `createCoordinator` needs. */
export interface CoordinatorOptions {
  readonly store: CoordinatorStore;
  readonly pool: MergeRunner;
  /** Where merged adapters are announced; none = stored and fetchable over gRPC only. */
  readonly publisher?: ResultPublisher;
  readonly clock?: Clock;
  readonly log?: Log;
  /** Retry interval of unannounced results (default 1 s, backing off). */
  readonly publishRetryMs?: number;
  /** Spans and metrics of rounds, updates and merges (default: none). */
  readonly telemetry?: Telemetry;
}

/** The coordinator's operations (see the module comment). */
export interface Coordinator {
  /** Replays the journal and resumes every federation's rounds. */
  start(): Promise<void>;
  close(): Promise<void>;
  // Operator side
  createFederation(f: Omit<Federation, "createdAt">): Promise<Federation>;
  /** Enrolls (or re-enrolls, rotating the token) a client; `tokenSha256` is the digest of the token handed out. */
  enrollClient(federationId: string, clientId: string, tokenSha256: string): Promise<ClientRecord>;
  startRound(federationId: string): Promise<RoundRecord>;
  closeRound(federationId: string, round?: number): Promise<RoundRecord>;
  abortRound(federationId: string, reason: string, round?: number): Promise<RoundRecord>;
  federations(): Federation[];
  federation(id: string): Federation;
  rounds(federationId: string): { round: RoundRecord; accepted: number }[];
  updates(federationId: string, round: number): UpdateRecord[];
  /** The merge result of a round (weights per client), when merged. */
  result(federationId: string, round: number): Promise<RoundResult | undefined>;
  clients(federationId: string): ClientRecord[];
  connected(federationId: string): string[];
  stragglers(federationId: string, round: number): string[];
  // Client side (identities already authenticated and authorised)
  clientConnected(federationId: string, clientId: string): Promise<void>;
  clientDisconnected(federationId: string, clientId: string): Promise<void>;
  current(federationId: string): RoundRecord | undefined;
  watch(federationId: string, listener: (e: RoundEvent) => void): () => void;
  submitUpdate(
    clientId: string,
    header: SubmitHeader,
    chunks: AsyncIterable<Uint8Array>,
  ): Promise<SubmitOutcome>;
  uploadStatus(key: UploadKey): Promise<UploadStatus>;
  /** Every client token digest with its client id and federations. */
  tokenDigests(): Map<string, { clientId: string; federations: Set<string> }>;
  readonly store: CoordinatorStore;
}

/**
 * Creates the coordinator; call `start()` before use.
 *
 * @example
 * const coordinator = createCoordinator({ store: createFileStore("data"), pool: await createMergePool() });
 * await coordinator.start();
 */
export function createCoordinator(opts: CoordinatorOptions): Coordinator {
  const { store, pool } = opts;
  const clock = opts.clock ?? systemClock;
  const log = opts.log ?? silentLog;
  const telemetry = opts.telemetry ?? noopTelemetry;
  let unobserve: (() => void) | undefined;
  const schedulers = new Map<string, RoundScheduler>();
  const feds = new Map<string, Federation>();
  const watchers = new Map<string, Set<(e: RoundEvent) => void>>();
  const results = new Map<string, RoundResult>();
  const merges = new Set<Promise<unknown>>();
  let publishing: ResultPublishing | undefined;
  let closed = false;

  const schedulerOf = (id: string): RoundScheduler => {
    const s = schedulers.get(id);
    if (s === undefined) throw new UnknownFederationError(id);
    return s;
  };
  const fedOf = (id: string): Federation => {
    const f = feds.get(id);
    if (f === undefined) throw new UnknownFederationError(id);
    return f;
  };

  const addScheduler = async (federation: Federation, state?: StoreState): Promise<void> => {
    const entry = state?.federations.get(federation.id);
    const rounds = entry === undefined ? [] : [...entry.rounds.values()];
    const scheduler = createRoundScheduler({
      federation,
      clock,
      initial: {
        rounds: rounds.map((r) => r.record),
        updates: rounds.flatMap((r) => [...r.updates.values()]),
        enrolled: entry === undefined ? [] : entry.clients.keys(),
        connected: [],
      },
      effects: {
        persistRound: async (round) => {
          await store.append({
            type: round.number > latestRound(federation.id) ? "round-opened" : "round-updated",
            round,
          });
        },
        persistUpdate: async (update) => {
          await store.append({ type: "update-accepted", update });
        },
        startMerge: (round, updates) => {
          const traced = telemetry.merge({
            federationId: federation.id,
            round: round.number,
            method: federation.merge.method,
            clients: updates.length,
          });
          const work = async () => {
            log.info("merging round", {
              federation: federation.id,
              round: round.number,
              updates: updates.length,
            });
            const t0 = clock.now();
            // A crash after the result was stored but before PUBLISHED was
            // journaled: keep that result (a new merge differs, if only in
            // its merge time, and the store refuses a second one).
            const previous = await store.adapterForRound(federation.id, round.number);
            const merged =
              previous !== undefined
                ? { stored: previous, result: await readResultMetadata(federation, round, previous) }
                : await mergeRound({
                    federation,
                    round,
                    updates,
                    store,
                    pool,
                    now: () => clock.now(),
                    onModule: traced.module,
                    onEvent: (e) => {
                      if (e.kind === "excluded") {
                        traced.excluded(e.clientId, e.error);
                        log.warn("update left out of the merge", {
                          federation: federation.id,
                          round: round.number,
                          client: e.clientId,
                          reason: e.reason,
                        });
                      } else {
                        traced.faultRetried(e.error);
                        log.error("merge hit a transient fault; retrying", {
                          federation: federation.id,
                          round: round.number,
                          error: e.error,
                          retryInMs: e.retryInMs,
                        });
                      }
                    },
                  });
            traced.end(merged.result.weights);
            results.set(key(federation.id, round.number), merged.result);
            log.info("round merged", {
              federation: federation.id,
              round: round.number,
              contentHash: merged.stored.contentHash,
              ms: clock.now() - t0,
            });
            await schedulerOf(federation.id).onMergeFinished(round.number, merged.stored.contentHash);
            publishing?.kick();
          };
          const run = traced.run(work).catch(async (err: unknown) => {
            traced.fail(err);
            log.error("merge failed", { federation: federation.id, round: round.number, error: err });
            if (!closed)
              await schedulerOf(federation.id)
                .onMergeFailed(round.number, err)
                .catch(() => {});
          });
          merges.add(run);
          void run.finally(() => merges.delete(run));
        },
        broadcast: (round, acceptedUpdates) => {
          for (const listener of watchers.get(federation.id) ?? []) listener({ round, acceptedUpdates });
          if (round.state !== "open") {
            log.info(`round ${round.state}`, {
              federation: federation.id,
              round: round.number,
              acceptedUpdates,
            });
            // Uploads still running for a closed round can never count: stop them and free the disk.
            store.discardRoundUploads(federation.id, round.number).catch((err: unknown) => {
              log.warn("could not discard a closed round's partial uploads", {
                federation: federation.id,
                round: round.number,
                error: err,
              });
            });
          }
          telemetry.roundChanged({
            round,
            method: federation.merge.method,
            accepted: acceptedUpdates,
            ...(round.state === "merging"
              ? { stragglers: schedulerOf(federation.id).stragglers(round.number).length }
              : {}),
          });
        },
        reportError: (err) => log.error("round scheduling error", { federation: federation.id, error: err }),
      },
    });
    feds.set(federation.id, federation);
    schedulers.set(federation.id, scheduler);
    const running = scheduler.current();
    if (running?.state === "open" || running?.state === "merging") {
      telemetry.roundResumed(running, federation.merge.method);
    }
    await scheduler.recover();
  };

  /** Every round of a federation, oldest first. */
  const roundsOf = (federationId: string): RoundRecord[] => {
    const s = schedulerOf(federationId);
    const out: RoundRecord[] = [];
    for (let n = 1; n <= (s.current()?.number ?? 0); n++) {
      const r = s.round(n);
      if (r !== undefined) out.push(r);
    }
    return out;
  };

  const latestRound = (federationId: string): number => {
    const rounds = store.state().federations.get(federationId)?.rounds;
    return rounds === undefined || rounds.size === 0 ? 0 : Math.max(...rounds.keys());
  };

  const result = async (federationId: string, round: number): Promise<RoundResult | undefined> => {
    const cached = results.get(key(federationId, round));
    if (cached !== undefined) return cached;
    const record = schedulerOf(federationId).round(round);
    if (record?.resultHash === undefined) return undefined;
    const handle = await store.adapterForRound(federationId, round);
    if (handle === undefined) return undefined;
    const rebuilt = await readResultMetadata(fedOf(federationId), record, handle);
    results.set(key(federationId, round), rebuilt);
    return rebuilt;
  };

  const coordinator: Coordinator = {
    store,
    async start() {
      const state = await store.open();
      for (const entry of state.federations.values()) await addScheduler(entry.federation, state);
      if (opts.publisher !== undefined) {
        publishing = createResultPublishing({
          publisher: opts.publisher,
          store,
          log,
          retryMs: opts.publishRetryMs,
          unannounced: () =>
            [...schedulers.keys()].flatMap((id) =>
              roundsOf(id)
                .filter((r) => r.state === "published" && r.published !== true)
                .map((r) => ({ federation: fedOf(id), round: r })),
            ),
          result,
          onPublished: async (r) => {
            await schedulerOf(r.federationId).markPublished(r.round);
            log.info("round announced", {
              federation: r.federationId,
              round: r.round,
              contentHash: r.contentHash,
            });
          },
        });
      }
      unobserve = telemetry.observeActiveClients(() =>
        [...schedulers].map(([id, s]) => [id, s.connected().length] as const),
      );
      log.info("coordinator started", { federations: feds.size });
    },
    async close() {
      closed = true;
      unobserve?.();
      for (const s of schedulers.values()) s.stop();
      await Promise.allSettled([...merges]);
      await publishing?.close();
      for (const s of schedulers.values()) await s.idle();
    },
    async createFederation(spec) {
      if (feds.has(spec.id)) {
        throw new FederationExistsError(spec.id);
      }
      const federation: Federation = { ...spec, createdAt: clock.now() };
      validateFederation(federation);
      await store.append({ type: "federation-created", federation });
      await addScheduler(federation);
      log.info("federation created", { federation: federation.id, method: federation.merge.method });
      return federation;
    },
    async enrollClient(federationId, clientId, tokenSha256) {
      const scheduler = schedulerOf(federationId);
      const problem = idProblem("client_id", clientId);
      if (problem !== undefined)
        throw new FederationConfigError(federationId, "client_id", problem.slice("client_id ".length));
      const client: ClientRecord = { federationId, clientId, tokenSha256, enrolledAt: clock.now() };
      await store.append({ type: "client-enrolled", client });
      await scheduler.onClientEnrolled(clientId);
      log.info("client enrolled", { federation: federationId, client: clientId });
      return client;
    },
    startRound: (id) => schedulerOf(id).startRound(),
    closeRound: (id, n) => schedulerOf(id).closeRound(n),
    abortRound: (id, reason, n) => schedulerOf(id).abortRound(reason, n),
    federations: () => [...feds.values()],
    federation: fedOf,
    rounds(id) {
      const s = schedulerOf(id);
      return roundsOf(id).map((round) => ({ round, accepted: s.accepted(round.number).length }));
    },
    updates(id, n) {
      const s = schedulerOf(id);
      if (s.round(n) === undefined) throw new UnknownRoundError(id, n);
      return [...s.accepted(n)];
    },
    result,
    clients: (id) => [...(store.state().federations.get(id)?.clients.values() ?? [])],
    connected: (id) => schedulerOf(id).connected(),
    stragglers: (id, n) => schedulerOf(id).stragglers(n),
    clientConnected: (id, clientId) => schedulerOf(id).onClientConnected(clientId),
    clientDisconnected: (id, clientId) => schedulerOf(id).onClientDisconnected(clientId),
    current: (id) => schedulerOf(id).current(),
    watch(id, listener) {
      schedulerOf(id);
      let set = watchers.get(id);
      if (set === undefined) {
        set = new Set();
        watchers.set(id, set);
      }
      set.add(listener);
      return () => set.delete(listener);
    },
    submitUpdate: (clientId, header, chunks) =>
      receiveUpdate({
        clientId,
        header,
        chunks,
        federation: fedOf(header.federationId),
        scheduler: schedulerOf(header.federationId),
        store,
        now: () => clock.now(),
        log,
        telemetry,
      }),
    uploadStatus: (k) => store.uploadStatus(k),
    tokenDigests() {
      const out = new Map<string, { clientId: string; federations: Set<string> }>();
      for (const entry of store.state().federations.values()) {
        for (const c of entry.clients.values()) {
          const hit = out.get(c.tokenSha256) ?? { clientId: c.clientId, federations: new Set<string>() };
          hit.federations.add(c.federationId);
          out.set(c.tokenSha256, hit);
        }
      }
      return out;
    },
  };
  return coordinator;
}

function key(federationId: string, round: number): string {
  return `${federationId}\u0000${round}`;
}
