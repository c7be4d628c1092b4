/**
 * Which clients are connected — the one answer the scheduler's cohorts,
 * `GetStatus` and the operator page all use. A client is connected while it
 * holds at least one open `WatchRounds` stream (the SDKs keep one open for the
 * whole session), and for `timeoutMs` after its last stream closed or its
 * last call (`Join`, `Heartbeat`, uploads, downloads). A sweep notices the
 * clients whose time ran out and reports them gone, so a client that joined
 * and died does not stay "connected" until the coordinator restarts.
 */

/** One client as `GetStatus` reports it. */
export interface ConnectionInfo {
  readonly federationId: string;
  readonly clientId: string;
  readonly joinedAt: number;
  readonly lastSeenAt: number;
  /** Open `WatchRounds` streams. */
  readonly streams: number;
  /** Whether it counts as connected now. */
  readonly live: boolean;
}

/** Tracks client connections (see the module comment). */
export interface ConnectionTracker {
  /** How long a client without a stream stays connected after its last call. */
  readonly timeoutMs: number;
  /** Records a call (a join, a heartbeat, an upload); returns whether the client just became connected. */
  touch(federationId: string, clientId: string): boolean;
  /** A watch stream opened; the returned function closes it (the client stays connected for `timeoutMs`). */
  open(federationId: string, clientId: string): () => void;
  /** Every client seen, connected or not. */
  list(): ConnectionInfo[];
  /** Checks now for clients whose time ran out (the sweep timer does this on its own). */
  sweep(): void;
  /** Stops the sweep timer. */
  close(): void;
}

/** What the tracker tells the round logic. */
export interface ConnectionEvents {
  /** The client became connected. */
  connected(federationId: string, clientId: string): void;
  /** The client is no longer connected: no stream, and no call for `timeoutMs`. */
  gone(federationId: string, clientId: string): void;
}

/** Options of {@link createConnectionTracker}. */
export interface ConnectionTrackerOptions {
  /** Default 60 s. */
  readonly timeoutMs?: number;
  readonly events?: ConnectionEvents;
  readonly now?: () => number;
  /** How often the sweep runs (default a quarter of `timeoutMs`, at most 5 s); 0 = never (tests call `sweep`). */
  readonly sweepEveryMs?: number;
}

/** Default {@link ConnectionTrackerOptions.timeoutMs}. */
export const DEFAULT_LIVENESS_TIMEOUT_MS = 60_000;

interface Entry {
  readonly federationId: string;
  readonly clientId: string;
  joinedAt: number;
  lastSeenAt: number;
  streams: number;
  live: boolean;
}

/**
 * Creates a tracker.
 *
 * @example
 * const connections = createConnectionTracker({ timeoutMs: 60_000, events: { connected, gone } });
 */
export function createConnectionTracker(options: ConnectionTrackerOptions = {}): ConnectionTracker {
  const now = options.now ?? Date.now;
  const timeoutMs = options.timeoutMs ?? DEFAULT_LIVENESS_TIMEOUT_MS;
  const events = options.events;
  const entries = new Map<string, Entry>();
  const seen = (federationId: string, clientId: string): { entry: Entry; became: boolean } => {
    const key = `${federationId}\u0000${clientId}`;
    let entry = entries.get(key);
    if (entry === undefined) {
      entry = { federationId, clientId, joinedAt: now(), lastSeenAt: now(), streams: 0, live: false };
      entries.set(key, entry);
    }
    entry.lastSeenAt = now();
    const became = !entry.live;
    if (became) {
      entry.live = true;
      entry.joinedAt = now();
      events?.connected(federationId, clientId);
    }
    return { entry, became };
  };
  const sweep = () => {
    const t = now();
    for (const e of entries.values()) {
      if (e.live && e.streams === 0 && t - e.lastSeenAt >= timeoutMs) {
        e.live = false;
        events?.gone(e.federationId, e.clientId);
      }
    }
  };
  const every = options.sweepEveryMs ?? Math.min(5_000, Math.max(10, Math.floor(timeoutMs / 4)));
  const timer = every > 0 ? setInterval(sweep, every) : undefined;
  timer?.unref();
  return {
    timeoutMs,
    touch: (f, c) => seen(f, c).became,
    open(f, c) {
      const { entry } = seen(f, c);
      entry.streams++;
      let closed = false;
      return () => {
        if (closed) return;
        closed = true;
        entry.streams--;
        entry.lastSeenAt = now();
      };
    },
    list: () => [...entries.values()].map((e) => ({ ...e })),
    sweep,
    close: () => clearInterval(timer),
  };
}
