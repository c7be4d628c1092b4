/**
 * Disk full is not the end of anything: an upload that meets a full disk is
 * refused with RESOURCE_EXHAUSTED (STORAGE_FULL), logged at error level, and
 * accepted once space is back; a round whose merged result meets a full disk
 * retries and publishes — with every acknowledged update — once space is back.
 *
 * The disk is full at the store port: while `disk.full` is set, every write
 * the file store would do fails with the kernel's own ENOSPC, got by writing
 * to /dev/full.
 */
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import { status } from "@grpc/grpc-js";
import type { LogFields } from "../server/src/core/log.ts";
import type { CoordinatorStore, UploadSink } from "../server/src/core/store.ts";
import { createFileStore } from "../server/src/store/file-store.ts";
import { assertEqualsDirectMerge } from "./helpers/direct-merge.ts";
import { expectError, waitFor } from "./helpers/expect.ts";
import { type Fixture, fetchRound, listUpdates, startFixture, submitUpdate } from "./helpers/federation.ts";
import { recordedMetrics } from "./helpers/metrics.ts";

/** Whether the disk is full now, and whether to fill it when the merged result is stored. */
const disk = { full: false, fillAtResult: false };

/** Throws the ENOSPC the kernel gives for a write to a full device. */
async function whenFull(): Promise<void> {
  if (disk.full) await writeFile("/dev/full", "x");
}

function fullableSink(sink: UploadSink): UploadSink {
  return {
    key: sink.key,
    expected: sink.expected,
    get offset() {
      return sink.offset;
    },
    write: async (chunk) => {
      await whenFull();
      return sink.write(chunk);
    },
    commit: async () => {
      await whenFull();
      return sink.commit();
    },
    close: () => sink.close(),
    abort: () => sink.abort(),
  };
}

/** The file store under `dataDir`, whose writes fail with ENOSPC while `disk.full`. */
function fullableStore(dataDir: string): CoordinatorStore {
  const store = createFileStore(dataDir);
  return {
    ...store,
    open: () => store.open(),
    state: () => store.state(),
    append: async (event) => {
      await whenFull();
      return store.append(event);
    },
    beginUpload: async (key, expected) => fullableSink(await store.beginUpload(key, expected)),
    uploadStatus: (key) => store.uploadStatus(key),
    discardUpload: (key) => store.discardUpload(key),
    discardRoundUploads: (f, r) => store.discardRoundUploads(f, r),
    openUpdate: (f, r, c) => store.openUpdate(f, r, c),
    putAdapter: async (input) => {
      if (disk.fillAtResult) {
        disk.fillAtResult = false;
        disk.full = true;
      }
      await whenFull();
      return store.putAdapter(input);
    },
    getAdapter: (hash) => store.getAdapter(hash),
    adapterForRound: (f, r) => store.adapterForRound(f, r),
    close: () => store.close(),
  };
}

describe("disk full during uploads and while storing the merged result", { timeout: 120_000 }, () => {
  let fx: Fixture;
  const metrics = recordedMetrics();
  const lines: { level: string; message: string; fields: LogFields }[] = [];
  const record =
    (level: string) =>
    (message: string, fields: LogFields = {}) =>
      lines.push({ level, message, fields });

  before(async () => {
    fx = await startFixture({
      clients: 3,
      rank: 4,
      store: fullableStore,
      telemetry: metrics.telemetry,
      log: { info: record("info"), warn: record("warn"), error: record("error") },
    });
    await fx.joinAll();
  });
  after(async () => {
    await fx?.close();
  });

  const send = (i: number) => submitUpdate(fx.client, fx.federationId, fx.clients[i]);

  it("refuses an upload with STORAGE_FULL, keeps what was accepted, and accepts it once space is back", async () => {
    assert.equal((await send(0)).accepted, true);
    disk.full = true;
    await expectError(send(1), status.RESOURCE_EXHAUSTED, "STORAGE_FULL", /storage is full/);
    disk.full = false;
    assert.ok(
      lines.some((l) => l.level === "error" && /storage full/.test(l.message)),
      "disk full is logged at error level",
    );
    const listed = await listUpdates(fx, fx.federationId);
    assert.deepEqual(
      listed.updates.map((u) => u.clientId),
      [fx.clients[0].id],
      "the update accepted before the disk filled is still there",
    );
    assert.equal((await send(1)).accepted, true);
  });

  it("retries a merge whose result meets a full disk and publishes it, with every acked update, once space is back", async () => {
    disk.fillAtResult = true;
    assert.equal((await send(2)).accepted, true);
    await waitFor(
      "the merge to hit the full disk",
      () => lines.some((l) => l.message === "merge hit a transient fault; retrying"),
      30_000,
    );
    assert.equal(fx.service.coordinator.rounds(fx.federationId)[0].round.state, "merging");
    assert.ok(
      lines.some((l) => l.level === "error" && l.fields.alert === "storage_full"),
      "an alert-level line says the disk is full",
    );
    disk.full = false;
    await waitFor(
      "the round to publish",
      () => fx.service.coordinator.rounds(fx.federationId)[0]?.round.state === "published",
      30_000,
    );
    assert.ok((await metrics.sum("tributary_merge_fault_retries_total", { reason: "ENOSPC" })) >= 1);
    const merged = await fetchRound(fx.client, fx.clients[0].token, fx.federationId);
    await assertEqualsDirectMerge(
      { configJson: merged.configJson, safetensors: merged.bytes },
      fx.clients.map((c) => c.dir),
      { rank: 4, samples: [100, 100, 100] },
    );
  });
});
