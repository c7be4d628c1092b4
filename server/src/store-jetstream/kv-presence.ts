/**
 * Which clients are connected to which coordinator, shared through the
 * JetStream KV bucket `tributary-presence` (`core/presence.ts`): each
 * coordinator writes `<federation>.<client>` for the clients connected to
 * it, refreshes the entries while they stay connected and deletes them when
 * they go; entries expire after the bucket's TTL, so a coordinator that dies
 * leaves none behind for long. Everyone watches the bucket, so a federation's
 * leader counts clients attached to any coordinator.
 */
import type { Log } from "../core/log.ts";
import type { Presence, PresenceEntry } from "../core/presence.ts";
import { openKvBucket } from "./kv-bucket.ts";
import { retryUntilReady } from "./transient.ts";

/** Options of {@link startKvPresence}. */
export interface KvPresenceOptions {
  readonly servers: readonly string[];
  readonly coordinatorId: string;
  /** How long an entry lasts unrefreshed (default 60 s, the liveness timeout). */
  readonly ttlMs?: number;
  readonly replicas?: number;
  /** The bucket (default `tributary-presence`). */
  readonly bucket?: string;
  readonly log?: Log;
}

const hex = (s: string) => Buffer.from(s, "utf8").toString("hex");
const unhex = (s: string) => Buffer.from(s, "hex").toString("utf8");

/**
 * Connects, creates the bucket, and starts watching it.
 *
 * @example
 * const presence = await startKvPresence({ servers, coordinatorId: "coord-a" });
 * presence.announce("support-bot", "hospital-3", true);
 */
export async function startKvPresence(options: KvPresenceOptions): Promise<Presence> {
  const ttlMs = options.ttlMs ?? 60_000;
  const { coordinatorId, log } = options;
  const { nc, kv } = await openKvBucket({
    servers: options.servers,
    name: `tributary-presence-${coordinatorId}`,
    bucket: options.bucket ?? "tributary-presence",
    ttlMs,
    replicas: options.replicas ?? 1,
    onRetry: (err) =>
      log?.warn("JetStream is not ready for the presence bucket yet; trying again", { error: err }),
  });
  /** Everyone's entries by key, as the watch saw them. */
  const seen = new Map<string, PresenceEntry>();
  /** This coordinator's own connected clients: key → entry. */
  const mine = new Map<string, PresenceEntry>();
  const listeners = new Set<(entry: PresenceEntry, connected: boolean) => void>();
  const tell = (entry: PresenceEntry, connected: boolean) => {
    for (const l of listeners) l(entry, connected);
  };
  const keyOf = (federationId: string, clientId: string) => `${hex(federationId)}.${hex(clientId)}`;

  const watch = await retryUntilReady(() => kv.watch({ key: ">" }), {
    servers: options.servers,
    what: "a watch of the presence bucket",
  }).catch(async (err: unknown) => {
    await nc.close();
    throw err;
  });
  void (async () => {
    for await (const e of watch) {
      const [f, c] = e.key.split(".");
      if (f === undefined || c === undefined) continue;
      if (e.operation === "PUT") {
        const v = e.json<{ coordinatorId: string; joinedAt: number }>();
        const entry: PresenceEntry = {
          federationId: unhex(f),
          clientId: unhex(c),
          coordinatorId: v.coordinatorId,
          joinedAt: v.joinedAt,
          lastSeenAt: e.created.getTime(),
        };
        const had = seen.has(e.key);
        seen.set(e.key, entry);
        if (!had) tell(entry, true);
      } else {
        const was = seen.get(e.key);
        seen.delete(e.key);
        if (was !== undefined) tell(was, false);
      }
    }
  })().catch((err: unknown) => log?.warn("presence watch ended", { error: err }));

  // Refresh this coordinator's entries; forget others' that expired without a delete.
  const refreshMs = Math.max(250, Math.floor(ttlMs / 3));
  const timer = setInterval(() => {
    const now = Date.now();
    for (const [key, entry] of mine) void kv.put(key, JSON.stringify(entry)).catch(() => undefined);
    for (const [key, entry] of seen) {
      if (now - entry.lastSeenAt > ttlMs && !mine.has(key)) {
        seen.delete(key);
        tell(entry, false);
      }
    }
  }, refreshMs);
  timer.unref();

  return {
    announce(federationId, clientId, connected) {
      const key = keyOf(federationId, clientId);
      if (connected) {
        const entry: PresenceEntry = {
          federationId,
          clientId,
          coordinatorId,
          joinedAt: mine.get(key)?.joinedAt ?? Date.now(),
          lastSeenAt: Date.now(),
        };
        mine.set(key, entry);
        void kv.put(key, JSON.stringify(entry)).catch((err: unknown) =>
          log?.warn("could not share a client's connection", {
            federation: federationId,
            client: clientId,
            error: err,
          }),
        );
      } else if (mine.delete(key)) {
        void kv.delete(key).catch(() => undefined);
      }
    },
    list: () => [...seen.values()],
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async close() {
      clearInterval(timer);
      watch.stop();
      await Promise.all([...mine.keys()].map((k) => kv.delete(k).catch(() => undefined)));
      await nc.close();
    },
  };
}
