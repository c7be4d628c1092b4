/**
 * The coordinator: a facade over intake (`update-intake.ts`), one round
 * scheduler per federation (`round-scheduler.ts`), the merge service
 * (`merge-service.ts`) and the announcer (`published-results.ts`), joined by
 * one flow of journaled events (`round-flow.ts`): the scheduler decides and
 * journals, everything else reacts to the journaled events.
 */
import { idProblem } from "@tributary/protocol";
import { systemClock } from "../core/clock.ts";
import { soleLeadership } from "../core/leadership.ts";
import { silentLog } from "../core/log.ts";
import type { ClientRecord, Federation } from "../core/model.ts";
import type { JournalEvent } from "../core/store.ts";
import { noopTelemetry } from "../core/telemetry.ts";
import { methodOf } from "../merge/methods/registry.ts";
import { createQueries } from "./coordinator-queries.ts";
import type { Coordinator, CoordinatorOptions } from "./coordinator-types.ts";
import { ClientEnrolledError, FederationConfigError, FederationExistsError } from "./errors.ts";
import { validateFederation } from "./federation-config.ts";
import { createFederationRegistry } from "./federation-registry.ts";
import { checkJoinClaim } from "./join-check.ts";
import { createMergeService } from "./merge-service.ts";
import type { PublishOutbox } from "./publish-outbox.ts";
import { createPublishedResults } from "./published-results.ts";
import { createRefusalLog } from "./refusal-log.ts";
import { createRoundFlow } from "./round-flow.ts";
import { createRoundWatch } from "./round-watch.ts";
import { receiveUpdate } from "./update-intake.ts";

export type { Coordinator, CoordinatorOptions, Joined, TokenHolder } from "./coordinator-types.ts";
export type { RoundEvent } from "./round-watch.ts";

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
  const flow = createRoundFlow(store, log);
  const leadership = opts.leadership ?? soleLeadership("local");
  const registry = createFederationRegistry({
    flow,
    clock,
    log,
    telemetry,
    leadership,
    state: () => store.state(),
    resumeMerge: (r) => merges.resume(r),
    // A round the previous leader merged but did not announce is announced now.
    onLead: () => outbox?.kick(),
  });
  const fedOf = registry.federation;
  const schedulerOf = registry.scheduler;
  const watch = createRoundWatch({ store, log, telemetry, federation: fedOf });
  const results = createPublishedResults(store, log, fedOf);
  const merges = createMergeService({
    store,
    pool,
    clock,
    log,
    telemetry,
    federation: fedOf,
    updates: (id, n) => schedulerOf(id).accepted(n),
    finished: (round, result) => schedulerOf(round.federationId).onMergeFinished(round.number, result),
    failed: (round, err) => schedulerOf(round.federationId).onMergeFailed(round.number, err),
    stillMerging: (round) => schedulerOf(round.federationId).round(round.number)?.state === "merging",
  });
  flow.subscribe((event, origin) => {
    watch.onEvent(event);
    // Merging and announcing are the leader's; its events are local to it.
    if (origin === "local") {
      merges.onEvent(event);
      results.onEvent(event);
    }
  });
  /** Clients connected to this coordinator, as `federation\0client`. */
  const here = new Set<string>();
  /** When each client last joined or heartbeat here (epoch ms). */
  const seen = new Map<string, number>();
  const refusals = createRefusalLog();
  const queries = createQueries({
    store,
    results,
    federations: () => registry.federations(),
    federation: (id) => fedOf(id),
    schedulerOf: (id) => schedulerOf(id),
  });
  const presence = opts.presence;
  const keyOf = (federationId: string, clientId: string) => `${federationId}\u0000${clientId}`;
  const connectedHere = async (federationId: string, clientId: string): Promise<void> => {
    await schedulerOf(federationId).onClientConnected(clientId);
    here.add(keyOf(federationId, clientId));
    seen.set(keyOf(federationId, clientId), clock.now());
    presence?.announce(federationId, clientId, true);
  };
  presence?.onChange((entry, connected) => {
    if (entry.coordinatorId === leadership.coordinatorId || !registry.has(entry.federationId)) return;
    const s = schedulerOf(entry.federationId);
    const done = connected
      ? s.onClientConnected(entry.clientId)
      : here.has(keyOf(entry.federationId, entry.clientId))
        ? Promise.resolve()
        : s.onClientDisconnected(entry.clientId);
    // A client enrolled a moment ago may not be known here yet: its next call will say.
    done.catch((err: unknown) => log.warn("could not count a client connected elsewhere", { error: err }));
  });

  /** An event another coordinator journaled: the schedulers take it in, then every listener hears it. */
  const onForeign = (event: JournalEvent): void => {
    const failed = (what: string) => (err: unknown) => log.error(what, { event: event.type, error: err });
    switch (event.type) {
      case "federation-created":
        void registry.add(event.federation).catch(failed("could not serve a new federation"));
        break;
      case "client-enrolled":
        void schedulerOf(event.client.federationId)
          .onClientEnrolled(event.client.clientId)
          .catch(failed("could not record an enrolment"));
        break;
      case "leader-elected":
        registry.onLeaderElected(event.leader);
        break;
      case "round-updated":
        break;
      default: {
        const id = event.type === "update-accepted" ? event.update.federationId : event.round.federationId;
        void schedulerOf(id).onForeignEvent(event).catch(failed("could not take in a round event"));
      }
    }
    flow.deliver(event);
  };
  let outbox: PublishOutbox | undefined;
  let unobserve: (() => void) | undefined;
  let unfollow: (() => void) | undefined;

  return {
    async start() {
      const state = await store.open();
      for (const entry of state.federations.values()) await registry.add(entry.federation);
      unfollow = store.follow?.(onForeign);
      if (opts.publisher !== undefined) {
        outbox = results.announce(
          opts.publisher,
          async (r) => {
            await schedulerOf(r.federationId).markPublished(r.round);
            log.info("round announced", {
              federation: r.federationId,
              round: r.round,
              contentHash: r.contentHash,
            });
          },
          opts.publishRetryMs,
          registry.leads,
        );
      }
      const unobserveClients = telemetry.observeActiveClients(() =>
        registry.schedulers().map(([id, s]) => [id, s.connected().length] as const),
      );
      const unobservePrivacy = telemetry.observePrivacy(() =>
        registry.federations().flatMap((f) => {
          const p = queries.privacy(f.id);
          return p === undefined ? [] : [[f.id, p.epsilon] as const];
        }),
      );
      unobserve = () => {
        unobserveClients();
        unobservePrivacy();
      };
      log.info("coordinator started", { federations: registry.federations().length });
    },
    async close() {
      unobserve?.();
      unfollow?.();
      for (const [, s] of registry.schedulers()) s.stop();
      await merges.close();
      await outbox?.close();
      await registry.close();
      await opts.contentChecker?.close();
    },
    async createFederation(spec) {
      if (registry.has(spec.id)) throw new FederationExistsError(spec.id);
      const federation: Federation = { ...spec, createdAt: clock.now() };
      validateFederation(federation);
      await flow.journal({ type: "federation-created", federation });
      await registry.add(federation);
      log.info("federation created", { federation: federation.id, method: federation.merge.method });
      return federation;
    },
    async enrollClient(federationId, clientId, tokenSha256, opts) {
      const scheduler = schedulerOf(federationId);
      const problem = idProblem("client_id", clientId);
      if (problem !== undefined)
        throw new FederationConfigError(federationId, "client_id", problem.slice("client_id ".length));
      if (scheduler.isEnrolled(clientId) && opts?.rotate !== true)
        throw new ClientEnrolledError(federationId, clientId);
      const client: ClientRecord = { federationId, clientId, tokenSha256, enrolledAt: clock.now() };
      await flow.journal({ type: "client-enrolled", client });
      await scheduler.onClientEnrolled(clientId);
      log.info("client enrolled", { federation: federationId, client: clientId });
      return client;
    },
    startRound: (id) => schedulerOf(id).startRound(),
    closeRound: (id, n) => schedulerOf(id).closeRound(n),
    abortRound: (id, reason, n) => schedulerOf(id).abortRound(reason, n),
    retryMerge: (id, n) => schedulerOf(id).retryMerge(n),
    async join(id, clientId, claim) {
      const federation = fedOf(id);
      checkJoinClaim(federation, clientId, claim);
      const s = schedulerOf(id);
      await connectedHere(id, clientId);
      const current = s.current();
      return {
        federation,
        ...(current !== undefined ? { current } : {}),
        accepted: current === undefined ? 0 : s.accepted(current.number).length,
        weightsBySamples: methodOf(federation.merge.method).usesSamples,
      };
    },
    watch(id, listener) {
      schedulerOf(id);
      return watch.watch(id, listener);
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
        ...(opts.contentChecker !== undefined ? { checker: opts.contentChecker } : {}),
      }).catch((err: unknown) => {
        refusals.note({ ...header, clientId }, err, clock.now());
        throw err;
      }),
    refusals: (id) => {
      fedOf(id);
      return refusals.list(id);
    },
    lastSeen: (id, clientId) => seen.get(keyOf(id, clientId)),
    ...queries,
    clientConnected: connectedHere,
    async clientDisconnected(id, clientId) {
      here.delete(keyOf(id, clientId));
      presence?.announce(id, clientId, false);
      const elsewhere = presence
        ?.list()
        .some(
          (e) =>
            e.federationId === id && e.clientId === clientId && e.coordinatorId !== leadership.coordinatorId,
        );
      if (elsewhere !== true) await schedulerOf(id).onClientDisconnected(clientId);
    },
    cluster: () => ({
      ...(leadership.replicated ? { coordinatorId: leadership.coordinatorId } : {}),
      leaders: leadership.replicated
        ? [...leadership.holders()].map(([federationId, h]) => ({ federationId, ...h }))
        : [],
      coordinators: leadership.replicated
        ? [...leadership.coordinators()].map(([coordinatorId, c]) => ({ coordinatorId, ...c }))
        : [],
      remoteClients: (presence?.list() ?? []).filter((e) => e.coordinatorId !== leadership.coordinatorId),
      workers: pool.workers?.() ?? [],
    }),
    subscribe: (listener) => flow.subscribe(listener),
  };
}
