/**
 * Which clients are connected, for the scheduler's cohorts and the
 * operator's status: a client is connected while it has at least one open
 * `WatchRounds` stream (the SDK keeps one open for the whole session); join
 * and last-seen times are kept for `GetStatus`.
 */

/** One connected client as `GetStatus` reports it. */
export interface ConnectionInfo {
  readonly federationId: string;
  readonly clientId: string;
  readonly joinedAt: number;
  readonly lastSeenAt: number;
  /** Open `WatchRounds` streams. */
  readonly streams: number;
}

/** Tracks client connections (see the module comment). */
export interface ConnectionTracker {
  /** Records activity (a join, an upload). */
  touch(federationId: string, clientId: string): void;
  /** A watch stream opened; the returned function closes it and says whether it was the client's last. */
  open(federationId: string, clientId: string): () => boolean;
  list(): ConnectionInfo[];
}

/** Creates a tracker using `now` for timestamps. */
export function createConnectionTracker(now: () => number = Date.now): ConnectionTracker {
  const entries = new Map<
    string,
    { federationId: string; clientId: string; joinedAt: number; lastSeenAt: number; streams: number }
  >();
  const entry = (federationId: string, clientId: string) => {
    const key = `${federationId}\u0000${clientId}`;
    let e = entries.get(key);
    if (e === undefined) {
      e = { federationId, clientId, joinedAt: now(), lastSeenAt: now(), streams: 0 };
      entries.set(key, e);
    }
    e.lastSeenAt = now();
    return e;
  };
  return {
    touch: (f, c) => void entry(f, c),
    open(f, c) {
      const e = entry(f, c);
      e.streams++;
      let closed = false;
      return () => {
        if (closed) return false;
        closed = true;
        e.streams--;
        e.lastSeenAt = now();
        return e.streams === 0;
      };
    },
    list: () => [...entries.values()].map((e) => ({ ...e })),
  };
}
