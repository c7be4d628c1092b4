import assert from "node:assert/strict";
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { StoreArgumentError, StoreIntegrityError } from "../core/store-errors.ts";
import { AdapterFormatError } from "../peft/index.ts";
import { createFileStore } from "./file-store.ts";
import { sha256, tempDir, updateBytes } from "./testing/fixtures.ts";

let dir = "";
let remove: () => Promise<void> = async () => undefined;
before(async () => {
  ({ dir, remove } = await tempDir());
});
after(() => remove());

const configJson = JSON.stringify({ peft_type: "LORA", r: 4, lora_alpha: 8 });

test("merged adapters are content-addressed, idempotent, immutable per round, and survive a restart", async () => {
  const store = createFileStore(dir);
  await store.open();
  const bytes = updateBytes(11, 8, 64, 32);
  const hash = sha256(bytes);
  const put = { federationId: "fed-1", round: 3, configJson, safetensors: bytes };
  assert.deepEqual(await store.putAdapter(put), { contentHash: hash, size: bytes.length });
  const weights = join(dir, "adapters", hash, "adapter_model.safetensors");
  const first = await stat(weights);
  assert.deepEqual(await store.putAdapter(put), { contentHash: hash, size: bytes.length });
  const second = await stat(weights);
  assert.deepEqual([second.ino, second.mtimeMs], [first.ino, first.mtimeMs], "not rewritten");
  assert.deepEqual((await readdir(join(dir, "adapters"))).sort(), [hash]);
  assert.deepEqual((await readdir(join(dir, "adapters", hash))).sort(), [
    "adapter_config.json",
    "adapter_model.safetensors",
  ]);

  // The same bytes as another round's result share the object.
  await store.putAdapter({ ...put, round: 4 });
  // A round is merged once: a different result is refused.
  const other = updateBytes(12, 8, 64, 32);
  await assert.rejects(
    store.putAdapter({ ...put, safetensors: other }),
    (err: unknown) => err instanceof StoreIntegrityError && err.reason === "round-result-conflict",
  );
  await assert.rejects(
    store.putAdapter({ ...put, round: 5, configJson: "{}" }),
    (err: unknown) => err instanceof StoreIntegrityError && err.reason === "adapter-conflict",
  );
  await assert.rejects(
    store.putAdapter({ ...put, round: 6, safetensors: bytes.subarray(0, 50) }),
    AdapterFormatError,
  );
  await store.close();

  const again = createFileStore(dir);
  await again.open();
  const got = await again.adapterForRound("fed-1", 3);
  assert.ok(got);
  assert.deepEqual([got.contentHash, got.size, got.configJson], [hash, bytes.length, configJson]);
  assert.equal((await again.adapterForRound("fed-1", 4))?.contentHash, hash);
  assert.equal(await again.adapterForRound("fed-1", 5), undefined);
  assert.equal(await again.adapterForRound("fed-1", 6), undefined);

  // Chunked fetches: positioned reads and ranged streams.
  const reader = await got.open();
  const parts: Uint8Array[] = [];
  for (let at = 0; at < reader.size; at += 1000) parts.push(await reader.read(at, 1000));
  assert.ok(Buffer.concat(parts).equals(Buffer.from(bytes)));
  assert.equal((await reader.read(reader.size, 10)).length, 0);
  await reader.close();
  const streamed: Buffer[] = [];
  for await (const chunk of got.stream({ start: 100, end: 199 })) streamed.push(chunk as Buffer);
  assert.ok(Buffer.concat(streamed).equals(Buffer.from(bytes.subarray(100, 200))));

  assert.equal(await again.getAdapter("0".repeat(64)), undefined);
  await assert.rejects(again.getAdapter("../../etc"), StoreArgumentError);
  await again.close();
});
