import assert from "node:assert/strict";
import { test } from "node:test";
import { parseSafetensors } from "../peft/safetensors.ts";
import type { ContentChecker, GrowingCheckInput } from "./content-check-pool.ts";
import { earlyCheck } from "./early-content-check.ts";
import { encodeTestAdapter, testFederation } from "./testing/fixtures.ts";

/** A checker recording the checks begun and the bytes each was told of. */
function recording() {
  const begun: { input: GrowingCheckInput; told: number[] }[] = [];
  const checker: ContentChecker = {
    check: async () => ({}),
    async begin(input) {
      const entry = { input, told: [] as number[] };
      begun.push(entry);
      return { advance: (n) => entry.told.push(n), cancel: () => undefined, result: Promise.resolve({}) };
    },
    close: async () => undefined,
  };
  return { checker, begun };
}

/** Feeds `bytes` to an early check in chunks of `size`. */
async function feed(bytes: Uint8Array, size: number, checker: ContentChecker) {
  const early = earlyCheck({
    checker,
    federation: testFederation(),
    clientId: "bob",
    configJson: "{}",
    path: "/staged/u.partial",
    size: bytes.length,
  });
  for (let at = 0; at < bytes.length; at += size) {
    const chunk = bytes.subarray(at, Math.min(bytes.length, at + size));
    await early.written(chunk, at + chunk.length);
  }
  return early;
}

test("an early check begins once the header is whole, however the chunks cut it, and is told of the last byte", async () => {
  const { safetensors } = encodeTestAdapter({ dtype: "BF16" });
  const expected = parseSafetensors(safetensors, "x").tensors;
  for (const size of [3, 8, 64, safetensors.length]) {
    const { checker, begun } = recording();
    const early = await feed(safetensors, size, checker);
    assert.equal(begun.length, 1, `chunks of ${size}`);
    assert.deepEqual([...begun[0].input.tensors.keys()].sort(), [...expected.keys()].sort());
    assert.ok(begun[0].input.available >= 8 + Number(new DataView(safetensors.buffer).getBigUint64(0, true)));
    assert.equal(begun[0].told.at(-1) ?? begun[0].input.available, safetensors.length);
    assert.notEqual(early.outcome(), undefined);
  }
});

test("an update whose header does not parse is left to the check of the stored file", async () => {
  const { safetensors } = encodeTestAdapter({ dtype: "BF16" });
  const truncated = safetensors.slice();
  new DataView(truncated.buffer).setBigUint64(0, BigInt(truncated.length), true); // runs past the end
  const { checker, begun } = recording();
  const early = await feed(truncated, 16, checker);
  assert.equal(begun.length, 0);
  assert.equal(early.outcome(), undefined);
});
