/**
 * Leader election on a JetStream KV bucket (`core/leadership.ts`): a
 * federation's lease is the key `lease.<federation>` of a bucket whose
 * entries expire after `leaseMs`. The leader renews it every `leaseMs / 3`
 * with a revision check; anyone else creates it only once it has expired
 * (or was given up), and the new revision is the new term. A leader that has
 * not renewed for `leaseMs / 2` — its NATS node unreachable, say — steps down
 * before its lease can expire anywhere else, and the journal's term check
 * refuses whatever it still tries to write. Every coordinator also keeps a
 * `coordinator.<id>` entry fresh, which is how the others know it is alive.
 */

import type { CampaignHandlers, Leadership, LeaseHolder } from "../core/leadership.ts";
import type { Log } from "../core/log.ts";
import { openKvBucket } from "./kv-bucket.ts";

/** Options of {@link startKvLeadership}. */
export interface KvLeadershipOptions {
  readonly servers: readonly string[];
  readonly coordinatorId: string;
  /** Where this coordinator serves gRPC (`host:port`), for the others to name. */
  readonly address?: string;
  /** How long a lease lasts unrenewed (default {@link DEFAULT_LEASE_MS}): the bound on fail-over. */
  readonly leaseMs?: number;
  readonly replicas?: number;
  /** The bucket (default `tributary-leases`). */
  readonly bucket?: string;
  readonly log?: Log;
}

/** Default {@link KvLeadershipOptions.leaseMs}. */
export const DEFAULT_LEASE_MS = 6_000;

interface Campaign {
  readonly handlers: CampaignHandlers;
  /** The revision of the lease this coordinator holds, if it holds it. */
  revision?: number;
  /** The term it holds it in (the revision that created it). */
  term?: number;
  /** When the last successful renewal was sent. */
  renewedAt: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Coordinator ids become key tokens: letters, digits, `-` and `_` kept, anything else hex-escaped. */
function keyToken(id: string): string {
  return id.replace(/[^A-Za-z0-9_-]/g, (c) => `=${c.charCodeAt(0).toString(16)}`);
}

/**
 * Connects, creates the lease bucket with its replicas, and starts renewing.
 *
 * @example
 * const leadership = await startKvLeadership({ servers, coordinatorId: "coord-a", address: "10.0.0.5:7070", replicas: 3 });
 * leadership.campaign("support-bot", { elected: (term) => lead(term), deposed: () => follow() });
 */
export async function startKvLeadership(options: KvLeadershipOptions): Promise<Leadership> {
  const leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
  const { coordinatorId, address, log } = options;
  const { nc, kv } = await openKvBucket({
    servers: options.servers,
    name: `tributary-leases-${coordinatorId}`,
    bucket: options.bucket ?? "tributary-leases",
    ttlMs: leaseMs,
    replicas: options.replicas ?? 1,
    timeoutMs: Math.max(500, Math.floor(leaseMs / 3)),
    onRetry: (err) =>
      log?.warn("JetStream is not ready for the lease bucket yet; trying again", { error: err }),
  });
  const campaigns = new Map<string, Campaign>();
  const holders = new Map<string, LeaseHolder>();
  const alive = new Map<string, { address?: string; seenAt: number }>();
  const value = (term?: number) =>
    encoder.encode(JSON.stringify({ coordinatorId, ...(address !== undefined ? { address } : {}), term }));
  let stopped = false;

  const step = async (federationId: string, c: Campaign): Promise<void> => {
    const key = `lease.${federationId}`;
    const now = Date.now();
    if (c.revision !== undefined) {
      try {
        c.revision = await kv.update(key, value(c.term), c.revision);
        c.renewedAt = now;
        return;
      } catch (err) {
        // Only a revision mismatch says someone else holds the lease (or it expired);
        // anything else — a timeout, a node down — is retried until half the lease is gone.
        let lost = /wrong last sequence/i.test(String(err));
        if (lost) {
          // A renewal that timed out here may have been written there: if the lease is still ours, go on from it.
          const entry = await kv.get(key).catch(() => null);
          const v = entry?.operation === "PUT" ? entry.json<{ coordinatorId?: string; term?: number }>() : {};
          if (entry !== null && v.coordinatorId === coordinatorId && v.term === c.term) {
            c.revision = entry.revision;
            c.renewedAt = entry.created.getTime();
            lost = false;
          }
        }
        if (!lost && now - c.renewedAt < leaseMs / 2) return;
        log?.warn("leader lease lost", { federation: federationId, error: err });
        c.revision = undefined;
        c.term = undefined;
        holders.delete(federationId);
        c.handlers.deposed();
        return;
      }
    }
    try {
      const revision = await kv.create(key, value());
      c.revision = revision;
      c.term = revision;
      c.renewedAt = now;
      holders.set(federationId, {
        coordinatorId,
        term: revision,
        ...(address !== undefined ? { address } : {}),
      });
      c.handlers.elected(revision);
    } catch {
      // Held by someone else (or NATS is unreachable): see who holds it.
      const entry = await kv.get(key).catch(() => null);
      if (entry !== null && entry.operation === "PUT") {
        const v = JSON.parse(decoder.decode(entry.value)) as {
          coordinatorId: string;
          address?: string;
          term?: number;
        };
        holders.set(federationId, {
          coordinatorId: v.coordinatorId,
          term: v.term ?? entry.revision,
          ...(v.address !== undefined ? { address: v.address } : {}),
        });
      } else holders.delete(federationId);
    }
  };

  const heartbeat = async (): Promise<void> => {
    await kv.put(`coordinator.${keyToken(coordinatorId)}`, value()).catch(() => undefined);
    const keys = await kv.keys("coordinator.*").catch(() => undefined);
    if (keys === undefined) return;
    const seen = new Map<string, { address?: string; seenAt: number }>();
    for await (const k of keys) {
      const e = await kv.get(k).catch(() => null);
      if (e === null || e.operation !== "PUT") continue;
      const v = JSON.parse(decoder.decode(e.value)) as { coordinatorId: string; address?: string };
      seen.set(v.coordinatorId, {
        ...(v.address ? { address: v.address } : {}),
        seenAt: e.created.getTime(),
      });
    }
    alive.clear();
    for (const [id, v] of seen) alive.set(id, v);
  };

  let running: Promise<void> = Promise.resolve();
  const tick = () => {
    running = running.then(async () => {
      if (stopped) return;
      await heartbeat();
      for (const [id, c] of campaigns) if (!stopped) await step(id, c);
    });
  };
  const timer = setInterval(tick, Math.max(100, Math.floor(leaseMs / 3)));
  timer.unref();
  tick();

  return {
    coordinatorId,
    replicated: true,
    leaseMs,
    campaign(federationId, handlers) {
      if (campaigns.has(federationId))
        throw new Error(`already campaigning for federation "${federationId}"`);
      campaigns.set(federationId, { handlers, renewedAt: 0 });
      tick();
    },
    holders: () => holders,
    coordinators: () => alive,
    async close() {
      stopped = true;
      clearInterval(timer);
      await running;
      // Give the leases up, so another coordinator takes over at once.
      for (const [id, c] of campaigns) {
        if (c.revision !== undefined)
          await kv.delete(`lease.${id}`, { previousSeq: c.revision }).catch(() => undefined);
      }
      await kv.delete(`coordinator.${keyToken(coordinatorId)}`).catch(() => undefined);
      await nc.close();
    },
  };
}
