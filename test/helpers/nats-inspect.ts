/**
 * What a test NATS server holds: a federation's results (the announcements
 * in the `TRIBUTARY_ROUNDS` stream and the adapter objects in the bucket),
 * and, for the JetStream store, its journal and who holds a lease.
 */
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { Objm } from "@nats-io/obj";
import { connect } from "@nats-io/transport-node";
import {
  announcementSubject,
  DEFAULT_BUCKET,
  DEFAULT_STREAM,
  DEFAULT_SUBJECT_PREFIX,
} from "@tributary/protocol";
import type { JournalEvent } from "../../server/src/core/store.ts";

/** The announcements and stored objects of `federationId`. */
export interface PublishedResults {
  /** Parsed announcement bodies, in stream order. */
  readonly announcements: { round: number; contentHash: string }[];
  /** Object names in the bucket under `<federationId>/`, sorted. */
  readonly objects: string[];
}

/** Reads the stream and bucket of `url` for `federationId` (empty when neither exists yet). */
export async function publishedResults(url: string, federationId: string): Promise<PublishedResults> {
  const nc = await connect({ servers: url });
  try {
    const jsm = await jetstreamManager(nc);
    const subject = announcementSubject(DEFAULT_SUBJECT_PREFIX, federationId);
    const announcements: { round: number; contentHash: string }[] = [];
    const info = await jsm.streams.info(DEFAULT_STREAM).catch(() => undefined);
    for (let seq = info?.state.first_seq ?? 1; info !== undefined && seq <= info.state.last_seq; seq++) {
      const msg = await jsm.streams.getMessage(DEFAULT_STREAM, { seq }).catch(() => null);
      if (msg !== null && msg.subject === subject) announcements.push(msg.json());
    }
    const objects: string[] = [];
    const store = await new Objm(nc).open(DEFAULT_BUCKET).catch(() => undefined);
    if (store !== undefined) {
      for (const o of await store.list()) {
        if (!o.deleted && o.name.startsWith(`${federationId}/`)) objects.push(o.name);
      }
    }
    return { announcements, objects: objects.sort() };
  } finally {
    await nc.close();
  }
}

/** The journal as the JetStream store keeps it (stream `TRIBUTARY_JOURNAL`). */
export async function journal(url: string): Promise<JournalEvent[]> {
  const nc = await connect({ servers: url });
  try {
    const js = jetstream(nc);
    const consumer = await js.consumers.get("TRIBUTARY_JOURNAL");
    const out: JournalEvent[] = [];
    for (;;) {
      const m = await consumer.next({ expires: 1_000 });
      if (m === null) return out;
      out.push(m.json<JournalEvent>());
    }
  } finally {
    await nc.close();
  }
}

/** Who holds federation `id`'s leader lease now (KV `tributary-leases`). */
export async function leaseHolder(url: string, id: string): Promise<string | undefined> {
  const nc = await connect({ servers: url });
  try {
    const kv = await new Kvm(nc).open("tributary-leases");
    const e = await kv.get(`lease.${id}`);
    return e?.operation === "PUT" ? e.json<{ coordinatorId: string }>().coordinatorId : undefined;
  } finally {
    await nc.close();
  }
}
