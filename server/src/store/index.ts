/**
 * The coordinator's durable store: the `CoordinatorStore` interface the
 * round logic depends on, the journal replay, and the embedded file-system
 * implementation.
 *
 * @example
 * const store = createFileStore(dataDir);
 * const state = await store.open(); // replayed journal: federations, clients, rounds, accepted updates
 */

export type {
  AdapterHandle,
  ByteReader,
  ClientEnrolled,
  CommittedUpload,
  CoordinatorStore,
  EventMeta,
  ExpectedUpload,
  FederationCreated,
  FederationEntry,
  JournalEvent,
  JournalEventType,
  NewJournalEvent,
  PutAdapterInput,
  RoundChanged,
  RoundEntry,
  RoundFlowEvent,
  RoundMerged,
  RoundOpened,
  RoundUpdated,
  StoredAdapter,
  StoredTensorInfo,
  StoreState,
  UpdateAccepted,
  UpdateReader,
  UploadKey,
  UploadSink,
  UploadStatus,
} from "../core/store.ts";
export {
  describeUpload,
  type IntegrityReason,
  JournalEventError,
  StoreArgumentError,
  StoreCorruptError,
  StoreIntegrityError,
  StoreLockedError,
  UpdateConflictError,
} from "../core/store-errors.ts";
export type { RoundAdapterRecord } from "./adapter-store.ts";
export { createFileStore, type FileStore, type FileStoreOptions } from "./file-store.ts";
export { acceptedUpdate, checkEvent, replay } from "./journal-state.ts";
export { checkId } from "./paths.ts";
export type { RecoveryReport } from "./recovery.ts";
