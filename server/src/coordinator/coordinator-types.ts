/**
 * The coordinator's contract (`coordinator.ts`): what it needs and the
 * operations the RPC edge and the operator page call. Transport-free: client
 * identities arrive already authenticated, errors leave as typed
 * `DomainError`s that the edge maps once.
 */

import type { Clock } from "../core/clock.ts";
import type { Leadership, LeaseHolder } from "../core/leadership.ts";
import type { Log } from "../core/log.ts";
import type { MergeRunner, MergeWorkerInfo } from "../core/merge-runner.ts";
import type { ClientRecord, Federation, RoundRecord, RoundResult, UpdateRecord } from "../core/model.ts";
import type { Presence, PresenceEntry } from "../core/presence.ts";
import type { ResultPublisher } from "../core/publisher.ts";
import type { AdapterHandle, CoordinatorStore, UploadKey, UploadStatus } from "../core/store.ts";
import type { Telemetry } from "../core/telemetry.ts";
import type { ContentChecker } from "./content-check-pool.ts";
import type { JoinClaim } from "./join-check.ts";
import type { AdapterSelector } from "./published-results.ts";
import type { Refusal } from "./refusal-log.ts";
import type { FlowListener } from "./round-flow.ts";
import type { RoundEvent } from "./round-watch.ts";
import type { SubmitHeader, SubmitOutcome } from "./update-intake.ts";

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
  /**
   * Who leads each federation when several coordinators share a replicated
   * store (default: this coordinator alone leads them all).
   */
  readonly leadership?: Leadership;
  /** Client connections shared between coordinators (default: this coordinator's own only). */
  readonly presence?: Presence;
  /**
   * Checks accepted updates' content (finite factors, norms) before they are
   * acknowledged (default: on the calling thread; `createContentCheckPool`
   * runs them on threads of their own). The coordinator closes it.
   */
  readonly contentChecker?: ContentChecker;
}

/** The coordinators sharing a store, as this one sees them. */
export interface ClusterView {
  /** This coordinator's id; `undefined` when it is alone on its store. */
  readonly coordinatorId?: string;
  /** Each federation's leader. */
  readonly leaders: readonly (LeaseHolder & { readonly federationId: string })[];
  /** Coordinators alive. */
  readonly coordinators: readonly {
    readonly coordinatorId: string;
    readonly address?: string;
    readonly seenAt: number;
  }[];
  /** Clients connected to the other coordinators. */
  readonly remoteClients: readonly PresenceEntry[];
  /** Merge workers attached (the merge runner's, when it hands modules out). */
  readonly workers: readonly MergeWorkerInfo[];
}

/** What a client sees when it joins. */
export interface Joined {
  readonly federation: Federation;
  readonly current?: RoundRecord;
  /** Accepted updates of the current round. */
  readonly accepted: number;
  /** The federation's method weights updates by their sample counts (a submit must give one). */
  readonly weightsBySamples: boolean;
}

/** An enrolled client's token digest, with the federations it is enrolled in. */
export interface TokenHolder {
  readonly clientId: string;
  readonly federations: Set<string>;
}

/** The coordinator's operations (see the module comment). */
export interface Coordinator {
  /** Replays the journal and resumes every federation's rounds. */
  start(): Promise<void>;
  close(): Promise<void>;
  // Operator side
  createFederation(f: Omit<Federation, "createdAt">): Promise<Federation>;
  /**
   * Enrolls a client; `tokenSha256` is the digest of the token handed out.
   * An enrolled client is refused (`ClientEnrolledError`) unless `rotate`,
   * which replaces its token (the old one stops working).
   */
  enrollClient(
    federationId: string,
    clientId: string,
    tokenSha256: string,
    opts?: { readonly rotate?: boolean },
  ): Promise<ClientRecord>;
  startRound(federationId: string): Promise<RoundRecord>;
  closeRound(federationId: string, round?: number): Promise<RoundRecord>;
  abortRound(federationId: string, reason: string, round?: number): Promise<RoundRecord>;
  /** Merges a round whose merge failed on the coordinator's side again (see `RoundScheduler.retryMerge`). */
  retryMerge(federationId: string, round: number): Promise<RoundRecord>;
  federations(): Federation[];
  federation(id: string): Federation;
  rounds(federationId: string): { round: RoundRecord; accepted: number }[];
  updates(federationId: string, round: number): UpdateRecord[];
  /** The merge result of a round (weights per client), when merged. */
  result(federationId: string, round: number): Promise<RoundResult | undefined>;
  clients(federationId: string): ClientRecord[];
  connected(federationId: string): string[];
  stragglers(federationId: string, round: number): string[];
  /** Why no round of the federation is open (`undefined` while one is open or merging). */
  whyNoRound(federationId: string): string | undefined;
  /**
   * With central DP: ε spent by the federation's merged rounds (at its δ),
   * its budget and whether another round fits; `undefined` without DP.
   */
  privacy(federationId: string):
    | {
        readonly epsilon: number;
        readonly delta: number;
        readonly epsilonBudget: number;
        readonly rounds: number;
        readonly budgetSpent: boolean;
      }
    | undefined;
  /** Updates intake refused lately (kept in memory by the coordinator that refused them), oldest first. */
  refusals(federationId: string): readonly Refusal[];
  /** When the client last joined or sent a heartbeat to this coordinator (epoch ms). */
  lastSeen(federationId: string, clientId: string): number | undefined;
  // Client side (identities already authenticated and authorised)
  /** Checks what the client claims of its adapters against the schema, and marks it connected. */
  join(federationId: string, clientId: string, claim: JoinClaim): Promise<Joined>;
  clientConnected(federationId: string, clientId: string): Promise<void>;
  /** The coordinators sharing this one's store, their leaders and their clients. */
  cluster(): ClusterView;
  clientDisconnected(federationId: string, clientId: string): Promise<void>;
  current(federationId: string): RoundRecord | undefined;
  watch(federationId: string, listener: (e: RoundEvent) => void): () => void;
  submitUpdate(
    clientId: string,
    header: SubmitHeader,
    chunks: AsyncIterable<Uint8Array>,
  ): Promise<SubmitOutcome>;
  /** Durable bytes of an upload; nothing, when another update holds the client's place in the round. */
  uploadStatus(key: UploadKey): Promise<UploadStatus>;
  /** A published round's adapter: by round number, content hash, or the latest (`UnknownRoundError` otherwise). */
  publishedAdapter(
    federationId: string,
    sel: AdapterSelector,
  ): Promise<{ handle: AdapterHandle; round: number }>;
  /** Every client token digest with its client id and federations. */
  tokenDigests(): Map<string, TokenHolder>;
  /** Follows every journaled event from now on (the edge's client directory refreshes on `client-enrolled`). */
  subscribe(listener: FlowListener): () => void;
}
