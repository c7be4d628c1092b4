/**
 * Which clients are connected to which coordinator, when several share one
 * replicated store: each announces its own connections, and a federation's
 * leader counts clients attached to any of them (cohorts, `minClients`),
 * and every coordinator's status lists them all. A coordinator alone needs
 * none (`localPresence` keeps its own).
 */

/** A client connected to some coordinator. */
export interface PresenceEntry {
  readonly federationId: string;
  readonly clientId: string;
  /** The coordinator it is connected to. */
  readonly coordinatorId: string;
  readonly joinedAt: number;
  /** When its coordinator last confirmed the connection. */
  readonly lastSeenAt: number;
}

/** Shared client connections. */
export interface Presence {
  /** This coordinator's client connected (or no longer). */
  announce(federationId: string, clientId: string, connected: boolean): void;
  /** Every connection known, this coordinator's and the others'. */
  list(): readonly PresenceEntry[];
  /** Tells `listener` of each connection that appears or goes, wherever it is; returns its removal. */
  onChange(listener: (entry: PresenceEntry, connected: boolean) => void): () => void;
  close(): Promise<void>;
}
