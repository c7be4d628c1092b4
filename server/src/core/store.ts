/**
 * The coordinator's durable store, as the round logic sees it: an append-only
 * journal of domain events (replayed into `StoreState` on start), staging of
 * update uploads (resumable, verified, atomically accepted), lazy module-by-
 * module reads of accepted updates, and immutable content-addressed merged
 * adapters. This is the port the round logic owns; `createFileStore`
 * (`store/`) implements it on a data directory; a JetStream
 * implementation can implement the same interface for several coordinators.
 */
import type { Readable } from "node:stream";
import type { ClientRecord, Federation, RoundRecord, RoundResult, UpdateRecord } from "./model.ts";

/** Identifies one upload: a client's update for one round of a federation (the identifying fields of its `UpdateRecord`). */
export type UploadKey = Pick<UpdateRecord, "federationId" | "round" | "clientId" | "updateId">;

/** Fields the store adds to every journaled event. */
export interface EventMeta {
  /** 1, 2, 3, … in journal order, assigned by the store. */
  readonly seq: number;
  /** Epoch milliseconds; the caller's, or the store's clock when omitted. */
  readonly at: number;
}

/** The operator created a federation. */
export interface FederationCreated extends EventMeta {
  readonly type: "federation-created";
  readonly federation: Federation;
}

/** A client enrolled (or re-enrolled, replacing its record) in a federation. */
export interface ClientEnrolled extends EventMeta {
  readonly type: "client-enrolled";
  readonly client: ClientRecord;
}

/** Who leads a federation: the one coordinator that runs its scheduler and merges. */
export interface FederationLeader {
  readonly federationId: string;
  /** The leading coordinator's id (`tributary serve --coordinator-id`). */
  readonly coordinatorId: string;
  /** Grows with every election; round events carry the term they were decided in. */
  readonly term: number;
  /** Where clients and operators reach the leader (`host:port`), if it said. */
  readonly address?: string;
}

/**
 * A coordinator won the federation's leader lease: from this event on, round
 * events count only in its `term` (a deposed leader's late write is refused).
 */
export interface LeaderElected extends EventMeta {
  readonly type: "leader-elected";
  readonly leader: FederationLeader;
}

/**
 * The term a round event was decided in, when its federation has an elected
 * leader (several coordinators on one replicated store); absent otherwise.
 */
export interface Fenced {
  readonly term?: number;
}

/** A round opened; `round.number` must be new for its federation. */
export interface RoundOpened extends EventMeta, Fenced {
  readonly type: "round-opened";
  readonly round: RoundRecord;
}

/**
 * Something happened to an open or merging round; each event carries the
 * round's whole new record:
 * - `round-extended`: the deadline passed without quorum and was extended once;
 * - `round-quorum`: quorum was reached (`quorumAt`), stragglers still welcome;
 * - `round-closed`: no more updates; the round is MERGING;
 * - `round-failed`: no quorum by the deadline, or the merge failed (`failure`);
 * - `round-aborted`: the operator stopped it (`failure`);
 * - `round-published`: its merged adapter was announced on NATS (`published`).
 */
export interface RoundChanged extends EventMeta, Fenced {
  readonly type:
    | "round-extended"
    | "round-quorum"
    | "round-closed"
    | "round-failed"
    | "round-aborted"
    | "round-published";
  readonly round: RoundRecord;
}

/**
 * A round was merged: its adapter is stored under `round.resultHash` and
 * `result` says who was merged with which weights, and when. The round is
 * PUBLISHED (fetchable); announcing it on NATS is `round-published`.
 */
export interface RoundMerged extends EventMeta, Fenced {
  readonly type: "round-merged";
  readonly round: RoundRecord;
  readonly result: RoundResult;
}

/**
 * A round's record changed, without saying why: what coordinators before the
 * typed round events journaled. Replayed as it was; never written any more.
 */
export interface RoundUpdated extends EventMeta {
  readonly type: "round-updated";
  readonly round: RoundRecord;
}

/** An update was accepted: its bytes were committed with `UploadSink.commit()` before this event. */
export interface UpdateAccepted extends EventMeta {
  readonly type: "update-accepted";
  readonly update: UpdateRecord;
}

/** One journal record (one JSON line of the file store's `journal.jsonl`). */
export type JournalEvent =
  | FederationCreated
  | ClientEnrolled
  | LeaderElected
  | RoundOpened
  | RoundChanged
  | RoundMerged
  | RoundUpdated
  | UpdateAccepted;

/** The events of a round's life, in the order a newcomer reads them (see `coordinator/round-flow.ts`). */
export type RoundFlowEvent = RoundOpened | RoundChanged | RoundMerged | UpdateAccepted;

/** The `type` tags of `JournalEvent`. */
export type JournalEventType = JournalEvent["type"];

type Unsealed<E> = E extends EventMeta ? Omit<E, "seq" | "at"> & { readonly at?: number } : never;

/** An event as handed to `append`: without `seq`, `at` optional; never the legacy `round-updated`. */
export type NewJournalEvent = Unsealed<Exclude<JournalEvent, RoundUpdated>>;

/** A round event as the scheduler journals it. */
export type NewRoundFlowEvent = Unsealed<RoundFlowEvent>;

/** A round as replayed: its latest record, its accepted updates and its result. */
export interface RoundEntry {
  /** The record of the round's latest event. */
  readonly record: RoundRecord;
  /** What `round-merged` journaled (absent before the merge, and for rounds merged before results were journaled). */
  readonly result?: RoundResult;
  /** Accepted updates by client id, in acceptance order. */
  readonly updates: ReadonlyMap<string, UpdateRecord>;
}

/** A federation as replayed. */
export interface FederationEntry {
  readonly federation: Federation;
  /** Enrolled clients by client id, in enrolment order. */
  readonly clients: ReadonlyMap<string, ClientRecord>;
  /** Rounds by number, in opening order. */
  readonly rounds: ReadonlyMap<number, RoundEntry>;
  /** The elected leader, when coordinators elect one (see `LeaderElected`). */
  readonly leader?: FederationLeader;
}

/** Everything the journal says, as `replay` folds it. */
export interface StoreState {
  /** `seq` of the last event (0 for an empty journal). */
  readonly lastSeq: number;
  /** Federations by id, in creation order. */
  readonly federations: ReadonlyMap<string, FederationEntry>;
}

/** Round `n` of federation `federationId` as replayed, if it exists. */
export function roundEntry(state: StoreState, federationId: string, n: number): RoundEntry | undefined {
  return state.federations.get(federationId)?.rounds.get(n);
}

/** What the client declared before sending an update's bytes: its `UpdateRecord`'s size and lower-case hex sha256. */
export type ExpectedUpload = Pick<UpdateRecord, "size" | "sha256">;

/** Where an upload ended up once committed. */
export interface CommittedUpload {
  /** Backend-specific location (the file store: the accepted file's path). */
  readonly location: string;
  readonly size: number;
  readonly sha256: string;
}

/** Receives one update's bytes; obtained from `CoordinatorStore.beginUpload`. */
export interface UploadSink {
  /** The upload this sink writes. */
  readonly key: UploadKey;
  /** What the client declared. */
  readonly expected: ExpectedUpload;
  /**
   * Next byte to write. At `beginUpload` it is the number of bytes durably
   * received (0 for a new upload, `size` for one already committed); the
   * client resumes from there.
   */
  readonly offset: number;
  /**
   * The local file the bytes are written to, when the store keeps uploads in
   * one that other threads may read while it grows (the file store): intake
   * checks the update's content there as it arrives. Each `write` has
   * reached the file when it resolves.
   */
  readonly path?: string;
  /** Appends `chunk` at `offset`; rejects with `StoreIntegrityError("size-overrun")`, writing nothing, past `size`. */
  write(chunk: Uint8Array): Promise<void>;
  /**
   * Makes the bytes durable, verifies size and sha256 over the whole stored
   * file and moves it atomically to the accepted location. On a mismatch it
   * deletes the partial and throws `StoreIntegrityError`; with bytes missing
   * it throws `StoreIntegrityError("incomplete")` and keeps them. The update
   * counts only once its `update-accepted` event is appended.
   */
  commit(): Promise<CommittedUpload>;
  /** Releases the sink, keeping the received bytes so the client can resume. */
  close(): Promise<void>;
  /** Releases the sink and deletes the received bytes. */
  abort(): Promise<void>;
}

/** Where an upload stands. */
export interface UploadStatus {
  /** `none`: nothing stored; `partial`: resumable; `committed`: awaiting its journal event; `accepted`: journaled. */
  readonly state: "none" | "partial" | "committed" | "accepted";
  /** Durable bytes: fsynced partial size, or the full size once committed. */
  readonly bytes: number;
}

/** One tensor of a stored safetensors file; compatible with the PEFT `TensorInfo`. */
export interface StoredTensorInfo {
  readonly dtype: string;
  readonly shape: readonly number[];
  readonly byteLength: number;
  /** Absolute byte offset of the tensor's data in the file. */
  readonly offset: number;
}

/** Reads an accepted update tensor by tensor without loading the file. */
export interface UpdateReader {
  /** Human-readable name of the update for messages. */
  readonly label: string;
  /** File size in bytes. */
  readonly size: number;
  /** The safetensors header: tensors in header order. */
  readonly tensors: ReadonlyMap<string, StoredTensorInfo>;
  /** The header's `__metadata__`. */
  readonly metadata: Readonly<Record<string, string>>;
  /** One tensor's raw bytes (a new, aligned buffer), read with a positioned read of exactly its range. */
  read(name: string): Promise<Uint8Array>;
  /**
   * The file the update is in, when the store keeps it in one that other
   * threads may read (the file store), for merges that read it again.
   */
  readonly path?: string;
  /** Releases the file. */
  close(): Promise<void>;
}

/** A merged adapter to store. */
export interface PutAdapterInput {
  readonly federationId: string;
  readonly round: number;
  /**
   * A rank variant of the round's adapter (`RoundResult.rankVariants`):
   * stored under its content hash like any adapter, but not recorded as the
   * round's adapter.
   */
  readonly rank?: number;
  /** `adapter_config.json` text. */
  readonly configJson: string;
  /** `adapter_model.safetensors` bytes. */
  readonly safetensors: Uint8Array;
}

/** The content address of a stored adapter. */
export interface StoredAdapter {
  /** Lower-case hex sha256 of the safetensors bytes. */
  readonly contentHash: string;
  /** Safetensors size in bytes. */
  readonly size: number;
}

/** Positioned reads of a stored object, for chunked fetches. */
export interface ByteReader {
  readonly size: number;
  /** Up to `length` bytes from `position` (fewer only at the end). */
  read(position: number, length: number): Promise<Uint8Array>;
  close(): Promise<void>;
}

/** A stored merged adapter. */
export interface AdapterHandle extends StoredAdapter {
  readonly configJson: string;
  /** Opens the safetensors bytes for positioned reads. */
  open(): Promise<ByteReader>;
  /** Streams the safetensors bytes, optionally from `start` to `end` (inclusive, as in `fs.createReadStream`). */
  stream(range?: { readonly start?: number; readonly end?: number }): Readable;
}

/** The coordinator's durable store. Every method resolves only once its effect is durable. */
export interface CoordinatorStore {
  /** Replays the journal (repairing a torn last line, rejecting corruption) and returns the state. Call once, first. */
  open(): Promise<StoreState>;
  /** The replayed state including every append so far. */
  state(): StoreState;
  /**
   * Appends `event` (assigning `seq`, and `at` when omitted), durable before
   * it resolves; concurrent appends are serialised. Throws `JournalEventError`
   * for an event that does not fit the state, and `StoreIntegrityError` for
   * an `update-accepted` whose bytes were not committed.
   */
  append(event: NewJournalEvent): Promise<JournalEvent>;
  /**
   * Starts or resumes an upload. An upload of the same key resumes at its
   * durable bytes; a new sink for a key supersedes an older one still open.
   * Throws `UpdateConflictError` when a different update is accepted for the
   * client and round, or the same update id with different content.
   */
  beginUpload(key: UploadKey, expected: ExpectedUpload): Promise<UploadSink>;
  /** Durable bytes of an upload (see `UploadStatus`); `UpdateConflictError` as `beginUpload`. */
  uploadStatus(key: UploadKey): Promise<UploadStatus>;
  /** Deletes a partial or committed-but-not-journaled upload; accepted updates are never deleted. True if something was removed. */
  discardUpload(key: UploadKey): Promise<boolean>;
  /**
   * Stops every upload still running for a round (their sinks then fail with
   * `UploadStoppedError("round-closed")`) and deletes the partial bytes (a
   * round that stopped accepting updates has no use for them); committed and
   * accepted updates are not touched. Returns the uploads stopped.
   */
  discardRoundUploads(federationId: string, round: number): Promise<number>;
  /** Opens the committed update of a client in a round for lazy reads. */
  openUpdate(federationId: string, round: number, clientId: string): Promise<UpdateReader>;
  /** Stores a merged adapter under its content hash and records it as the round's result, unless it is a rank variant (idempotent). */
  putAdapter(input: PutAdapterInput): Promise<StoredAdapter>;
  /** A stored adapter by content hash, or `undefined`. */
  getAdapter(contentHash: string): Promise<AdapterHandle | undefined>;
  /** The adapter recorded for a round, or `undefined`. */
  adapterForRound(federationId: string, round: number): Promise<AdapterHandle | undefined>;
  /**
   * Replicated stores (several coordinators): calls `listener` with every
   * event other coordinators journal from now on, in journal order, once
   * `state()` includes it; returns the unsubscription. The file store has no
   * other writers and leaves it out.
   */
  follow?(listener: (event: JournalEvent) => void): () => void;
  /** Releases files and the data directory lock; open sinks and readers stop working. */
  close(): Promise<void>;
}
