import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { JournalEventError, StoreArgumentError } from "../core/store-errors.ts";
import { createFileStore } from "./file-store.ts";
import { checkId, checkRound } from "./paths.ts";
import { client, federation, tempDir } from "./testing/fixtures.ts";

let root = "";
let remove: () => Promise<void> = async () => undefined;
before(async () => {
  ({ dir: root, remove } = await tempDir());
});
after(() => remove());

const hostile = ["..", ".", "../x", "a/b", "a\\b", "", "x".repeat(129), "é", "a b", "a\u0000b", "/etc"];

test("ids are [A-Za-z0-9._-]{1,128}, never . or ..", () => {
  for (const ok of ["a", "A.b-c_9", "x".repeat(128), "...", ".hidden"])
    assert.equal(checkId("client_id", ok), ok);
  for (const bad of [...hostile, 7, null, undefined]) {
    assert.throws(() => checkId("client_id", bad), StoreArgumentError, JSON.stringify(bad));
  }
  assert.throws(() => checkId("client_id", "../x"), /invalid client_id "..\/x"/);
  for (const bad of [0, -1, 1.5, "1", Number.NaN]) assert.throws(() => checkRound(bad), StoreArgumentError);
});

test("the store rejects path-traversal ids everywhere and writes nothing outside its directory", async () => {
  const dataDir = join(root, "data");
  const store = createFileStore(dataDir);
  await store.open();
  await store.append({ type: "federation-created", federation: federation() });
  const expected = { size: 10, sha256: "0".repeat(64) };
  for (const bad of hostile) {
    const keys = [
      { federationId: bad, round: 1, clientId: "c", updateId: "u" },
      { federationId: "fed-1", round: 1, clientId: bad, updateId: "u" },
      { federationId: "fed-1", round: 1, clientId: "c", updateId: bad },
    ];
    for (const key of keys) {
      await assert.rejects(store.beginUpload(key, expected), StoreArgumentError);
      await assert.rejects(store.uploadStatus(key), StoreArgumentError);
      await assert.rejects(store.discardUpload(key), StoreArgumentError);
    }
    await assert.rejects(store.openUpdate("fed-1", 1, bad), StoreArgumentError);
    await assert.rejects(store.openUpdate(bad, 1, "c"), StoreArgumentError);
    await assert.rejects(store.adapterForRound(bad, 1), StoreArgumentError);
    await assert.rejects(
      store.putAdapter({ federationId: bad, round: 1, configJson: "{}", safetensors: new Uint8Array() }),
      StoreArgumentError,
    );
    await assert.rejects(store.append({ type: "client-enrolled", client: client(bad) }), JournalEventError);
    await assert.rejects(
      store.append({ type: "federation-created", federation: { ...federation(), id: bad } }),
      JournalEventError,
    );
  }
  await assert.rejects(
    store.beginUpload({ federationId: "fed-1", round: 0, clientId: "c", updateId: "u" }, expected),
    /invalid round 0/,
  );
  await assert.rejects(store.getAdapter("../../../etc/passwd"), StoreArgumentError);
  await store.close();
  assert.deepEqual((await readdir(root)).sort(), ["data"]);
  assert.deepEqual((await readdir(dataDir)).sort(), ["journal.jsonl"]);
});
