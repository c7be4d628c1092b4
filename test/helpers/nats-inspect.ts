/**
 * What a test NATS server holds of a federation's results: the announcements
 * in the `TRIBUTARY_ROUNDS` stream and the adapter objects in the bucket.
 */
import { jetstreamManager } from "@nats-io/jetstream";
import { Objm } from "@nats-io/obj";
import { connect } from "@nats-io/transport-node";
import {
  announcementSubject,
  DEFAULT_BUCKET,
  DEFAULT_STREAM,
  DEFAULT_SUBJECT_PREFIX,
} from "@tributary/protocol";

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
