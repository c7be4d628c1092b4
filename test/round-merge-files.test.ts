/**
 * The coordinator's round merge on a device with strided products (native
 * BLAS; without it every module is read through the store): a module whose merge only multiplies (here the dense product, as
 * 12 clients of rank 8 stack past the modules' widths) is read by the merge
 * itself from the stored update files on every pass, never through the
 * store's reader into the coordinator's memory; the broadcast equals the
 * direct merge of the clients' adapters all the same.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { selectBackend } from "../server/src/compute/backend.ts";
import type { CoordinatorStore, UpdateReader } from "../server/src/core/store.ts";
import { streamableOptions } from "../server/src/merge/methods/streamed.ts";
import { resolveOptions } from "../server/src/merge/options.ts";
import { createFileStore } from "../server/src/store/file-store.ts";
import { assertEqualsDirectMerge } from "./helpers/direct-merge.ts";
import { waitFor } from "./helpers/expect.ts";
import { type Fixture, fetchRound, MODULES, startFixture, submitUpdate } from "./helpers/federation.ts";

const CLIENTS = 12;
const RANK = 8;
/** Tensors the merge read through the store's reader, by module (intake's reads are its own). */
const readThroughStore = new Map<string, number>();

function recordingReader(reader: UpdateReader): UpdateReader {
  // Intake reads every committed update back through the store to check it.
  if (new Error().stack?.includes("update-intake")) return reader;
  return {
    ...reader,
    read(name) {
      const module = MODULES.find((m) => name.includes(`${m.name}.`))?.name ?? name;
      readThroughStore.set(module, (readThroughStore.get(module) ?? 0) + 1);
      return reader.read(name);
    },
  };
}

function recordingStore(dataDir: string): CoordinatorStore {
  const store = createFileStore(dataDir);
  return {
    ...store,
    openUpdate: async (f, r, c) => recordingReader(await store.openUpdate(f, r, c)),
  };
}

describe("the round merge reads stored update files itself", () => {
  let fx: Fixture;
  before(async () => {
    fx = await startFixture({ clients: CLIENTS, rank: RANK, store: recordingStore });
    await fx.joinAll();
  });
  after(async () => {
    await fx?.close();
  });

  it("merges the product-only modules from the files, equal to the direct merge", async () => {
    // The coordinator runs in this process (threads: 0): its backend is this one.
    const readsFiles = (await selectBackend()).stridedProducts;
    for (const c of fx.clients)
      assert.equal((await submitUpdate(fx.client, fx.federationId, c)).accepted, true);
    await waitFor(
      "the round to publish",
      () => fx.service.coordinator.rounds(fx.federationId)[0]?.round.state === "published",
      60_000,
    );
    const merged = await fetchRound(fx.client, fx.clients[0].token, fx.federationId);
    await assertEqualsDirectMerge(
      { configJson: merged.configJson, safetensors: merged.bytes },
      // In merge order: by client id (client-1, client-10, client-11, client-12, client-2, …).
      [...fx.clients].sort((x, y) => (x.id < y.id ? -1 : 1)).map((c) => c.dir),
      { rank: RANK, samples: fx.clients.map(() => 100) },
    );
    const opts = resolveOptions({ method: "from", rank: RANK });
    const meta = (m: (typeof MODULES)[number]) => ({
      ...m,
      clients: fx.clients.map(() => ({ rank: RANK, scaling: 2 })),
    });
    const fromFiles = readsFiles
      ? MODULES.filter((m) => streamableOptions(meta(m), opts)).map((m) => m.name)
      : [];
    if (readsFiles) assert.ok(fromFiles.length > 0, "some module qualifies");
    for (const m of MODULES) {
      const reads = readThroughStore.get(m.name) ?? 0;
      if (fromFiles.includes(m.name)) assert.equal(reads, 0, `${m.name} was read through the store`);
      else assert.equal(reads, 2 * CLIENTS, `${m.name}: A and B of every client, once`);
    }
  });
});
