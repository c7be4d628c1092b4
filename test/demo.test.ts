import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { runDemo } from "../server/src/demo/federated-demo.ts";

test("the demo federation trains, merges and evaluates both methods round after round (tiny size)", async () => {
  const root = await mkdtemp(join(tmpdir(), "tributary-demo-"));
  const lines: string[] = [];
  try {
    const rows = await runDemo({
      nodes: 3,
      rounds: 2,
      rank: 4,
      epochs: 2,
      skew: 2,
      seed: 1,
      trainPerClass: 60,
      dataDir: join(root, "data"),
      print: (l) => lines.push(l),
    });
    assert.deepEqual(
      rows.map((r) => `${r.round} ${r.method}`),
      ["1 FedAvg", "1 FroM", "2 FedAvg", "2 FroM"],
    );
    for (const r of rows) {
      assert.equal(r.accuracy.perNode.length, 3);
      for (const a of [...r.accuracy.perNode, r.accuracy.global]) assert.ok(a >= 0 && a <= 1);
    }
    const base = /scores\s+(\d+)%/.exec(lines.join("\n"));
    assert.ok(base !== null, "the base accuracy is printed");
    for (const r of rows.filter((x) => x.round === 2)) {
      assert.ok(
        100 * r.accuracy.global > Number(base[1]),
        `${r.method}: merged adapter (${r.accuracy.global}) does not beat the frozen base (${base[1]}%)`,
      );
    }
    assert.ok(
      lines.some((l) => /^\s+2 \| FroM .* \| FedAvg /.test(l)),
      "a side-by-side row per round is printed",
    );
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
