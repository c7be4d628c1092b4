/**
 * Child process of the crash test: opens the file store at `argv[2]` and, for
 * client after client, journals an enrolment and uploads, commits and
 * journals an update (every third client abandons its upload halfway),
 * printing one line after each durable acknowledgement:
 *
 * ```
 * event <seq> <type> <id>
 * update <clientId> <updateId> <sha256>
 * partial <clientId> <updateId> <bytes>
 * ```
 *
 * It runs until killed; a restarted writer continues after the clients
 * already enrolled. With `argv[3]` = `mid-upload` or `committed` it stops
 * at that point of its first full upload (half the bytes written; committed
 * but not journaled), prints `stall <point> <clientId>` and waits to be killed. Client `c<i>` sends `updateBytes(i, …CRASH_UPDATE_SHAPE)`.
 */
import { createFileStore } from "../file-store.ts";
import {
  CRASH_UPDATE_SHAPE,
  client,
  federation,
  round,
  sha256,
  updateBytes,
  updateRecord,
} from "./fixtures.ts";

const CHUNK = 8 * 1024;

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** Waits forever (for the kill) if `point` is where this run should stop. */
async function stall(point: string, clientId: string): Promise<void> {
  if (process.argv[3] !== point) return;
  say(`stall ${point} ${clientId}`);
  setInterval(() => undefined, 60_000);
  await new Promise<never>(() => undefined);
}

async function main(dataDir: string): Promise<void> {
  const store = createFileStore(dataDir);
  const state = await store.open();
  const fed = federation();
  if (!state.federations.has(fed.id)) {
    const e = await store.append({ type: "federation-created", federation: fed });
    say(`event ${e.seq} ${e.type} ${fed.id}`);
  }
  if (!state.federations.get(fed.id)?.rounds.has(1)) {
    const r = await store.append({ type: "round-opened", round: round(1) });
    say(`event ${r.seq} ${r.type} 1`);
  }
  const { rank, dIn, dOut } = CRASH_UPDATE_SHAPE;
  for (let i = state.federations.get(fed.id)?.clients.size ?? 0; ; i++) {
    const clientId = `c${i}`;
    const e = await store.append({ type: "client-enrolled", client: client(clientId) });
    say(`event ${e.seq} ${e.type} ${clientId}`);
    const bytes = updateBytes(i, rank, dIn, dOut);
    const key = { federationId: fed.id, round: 1, clientId, updateId: `u${i}` };
    const sink = await store.beginUpload(key, { size: bytes.length, sha256: sha256(bytes) });
    const stop = i % 3 === 2 ? bytes.length >> 1 : bytes.length;
    for (let at = sink.offset; at < stop; at += CHUNK) {
      await sink.write(bytes.subarray(at, Math.min(stop, at + CHUNK)));
      if (stop === bytes.length && at < bytes.length / 2 && at + CHUNK >= bytes.length / 2) {
        await stall("mid-upload", clientId);
      }
    }
    if (stop < bytes.length) {
      await sink.close();
      const { bytes: durable } = await store.uploadStatus(key);
      say(`partial ${clientId} ${key.updateId} ${durable}`);
      continue;
    }
    await sink.commit();
    await stall("committed", clientId);
    await store.append({ type: "update-accepted", update: updateRecord(key, bytes) });
    say(`update ${clientId} ${key.updateId} ${sha256(bytes)}`);
  }
}

main(process.argv[2]).catch((err: unknown) => {
  process.stderr.write(`crash-writer: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
