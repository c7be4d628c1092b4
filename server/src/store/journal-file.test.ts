import assert from "node:assert/strict";
import { appendFile, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, test } from "node:test";
import {
  JournalEventError,
  StoreCorruptError,
  StoreIntegrityError,
  StoreLockedError,
} from "../core/store-errors.ts";
import { createFileStore } from "./file-store.ts";
import { client, federation, round, tempDir, updateBytes, updateRecord } from "./testing/fixtures.ts";

let root = "";
let remove: () => Promise<void> = async () => undefined;
let n = 0;
before(async () => {
  ({ dir: root, remove } = await tempDir());
});
after(() => remove());

/** A fresh data directory with a federation, two clients and round 1 journaled (4 events). */
async function seeded(): Promise<string> {
  const dir = join(root, `d${n++}`);
  const store = createFileStore(dir, { now: () => 42 });
  await store.open();
  await store.append({ type: "federation-created", federation: federation() });
  await store.append({ type: "client-enrolled", client: client("alice") });
  await store.append({ type: "client-enrolled", client: client("bob") });
  await store.append({ type: "round-opened", round: round(1), at: 7 });
  await store.close();
  return dir;
}

test("appended events get seq and at, are durable, and replay after reopen", async () => {
  const dir = await seeded();
  const lines = (await readFile(join(dir, "journal.jsonl"), "utf8")).split("\n");
  assert.equal(lines.length, 5);
  assert.equal(lines[4], "");
  assert.deepEqual(
    lines.slice(0, 4).map((l) => {
      const { seq, at, type } = JSON.parse(l);
      return [seq, at, type];
    }),
    [
      [1, 42, "federation-created"],
      [2, 42, "client-enrolled"],
      [3, 42, "client-enrolled"],
      [4, 7, "round-opened"],
    ],
  );
  const store = createFileStore(dir);
  const state = await store.open();
  assert.equal(state.lastSeq, 4);
  assert.deepEqual([...state.federations.get("fed-1")!.clients.keys()], ["alice", "bob"]);
  assert.equal(store.tornBytes, 0);
  await store.close();
});

test("concurrent appends are serialised with consecutive seqs", async () => {
  const dir = await seeded();
  const store = createFileStore(dir);
  await store.open();
  const ids = Array.from({ length: 40 }, (_, i) => `c${i}`);
  const events = await Promise.all(
    ids.map((id) => store.append({ type: "client-enrolled", client: client(id) })),
  );
  assert.deepEqual(
    events.map((e) => e.seq).sort((a, b) => a - b),
    ids.map((_, i) => i + 5),
  );
  await store.close();
  const again = createFileStore(dir);
  const state = await again.open();
  assert.equal(state.lastSeq, 44);
  assert.equal(state.federations.get("fed-1")!.clients.size, 42);
  await again.close();
});

test("a torn last line is truncated and appends continue after it", async () => {
  for (const tail of ['{"type":"client-enrolled","seq":5,"at":1,"cli', '{"type":"client-enr\u0000\u0000\n']) {
    const dir = await seeded();
    const journal = join(dir, "journal.jsonl");
    const good = (await stat(journal)).size;
    await appendFile(journal, tail);
    const store = createFileStore(dir);
    const state = await store.open();
    assert.equal(state.lastSeq, 4);
    assert.equal(store.tornBytes, Buffer.byteLength(tail));
    assert.equal((await stat(journal)).size, good);
    await store.append({ type: "client-enrolled", client: client("carol") });
    await store.close();
    const again = createFileStore(dir);
    assert.equal((await again.open()).lastSeq, 5);
    await again.close();
  }
});

test("a corrupt line in the middle is rejected naming the file and line", async () => {
  const dir = await seeded();
  const journal = join(dir, "journal.jsonl");
  const lines = (await readFile(journal, "utf8")).split("\n");
  lines[1] = lines[1].slice(0, 20);
  await writeFile(journal, lines.join("\n"));
  await assert.rejects(createFileStore(dir).open(), (err: unknown) => {
    assert.ok(err instanceof StoreCorruptError, String(err));
    assert.equal(err.file, journal);
    assert.equal(err.line, 2);
    assert.match(err.message, /journal\.jsonl:2: corrupt journal line/);
    return true;
  });
  // The failed open released the lock and changed nothing.
  assert.equal((await readFile(journal, "utf8")).split("\n").length, 5);
  await assert.rejects(createFileStore(dir).open(), StoreCorruptError);
});

test("a line that contradicts the state before it is corruption, even when valid JSON", async () => {
  const dir = await seeded();
  const journal = join(dir, "journal.jsonl");
  const lines = (await readFile(journal, "utf8")).split("\n");
  [lines[0], lines[1]] = [lines[1], lines[0]];
  await writeFile(journal, lines.join("\n"));
  await assert.rejects(createFileStore(dir).open(), (err: unknown) => {
    assert.ok(err instanceof StoreCorruptError);
    assert.equal(err.line, 1);
    assert.match(err.message, /:1: client-enrolled has seq 2, expected 1/);
    return true;
  });
});

test("append refuses events that do not fit and writes nothing", async () => {
  const dir = await seeded();
  const store = createFileStore(dir);
  await store.open();
  await assert.rejects(
    store.append({ type: "client-enrolled", client: client("x", "other-fed") }),
    JournalEventError,
  );
  await assert.rejects(
    store.append({ type: "client-enrolled", client: client("../x") }),
    /invalid client_id/,
  );
  await assert.rejects(store.append({ type: "round-opened", round: round(1) }), /opened after round 1/);
  const key = { federationId: "fed-1", round: 1, clientId: "alice", updateId: "u1" };
  await assert.rejects(
    store.append({ type: "update-accepted", update: updateRecord(key, updateBytes(1)) }),
    (err: unknown) => err instanceof StoreIntegrityError && err.reason === "not-committed",
  );
  assert.equal(store.state().lastSeq, 4);
  await store.close();
  const again = createFileStore(dir);
  assert.equal((await again.open()).lastSeq, 4);
  await again.close();
});

test("one open store per data directory", async () => {
  const dir = await seeded();
  const first = createFileStore(dir);
  await first.open();
  await assert.rejects(createFileStore(dir).open(), StoreLockedError);
  await first.close();
  await assert.rejects(first.append({ type: "client-enrolled", client: client("z") }), /closed/);
  // A lock left by a dead process is taken over.
  await writeFile(join(dir, "LOCK"), "2147483646\n");
  const second = createFileStore(dir);
  await second.open();
  await second.close();
});
