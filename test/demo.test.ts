import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { epsilonOf } from "@tributary/protocol";
import { runDemo } from "../server/src/demo/federated-demo.ts";

/** Runs the demo with `options` in a temporary data dir; resolves with its rows and the lines it printed. */
async function runDemoIn(
  name: string,
  options: Omit<Parameters<typeof runDemo>[0], "dataDir" | "print">,
): Promise<{ rows: Awaited<ReturnType<typeof runDemo>>; lines: string[] }> {
  const root = await mkdtemp(join(tmpdir(), `tributary-${name}-`));
  const lines: string[] = [];
  try {
    const rows = await runDemo({ ...options, dataDir: join(root, "data"), print: (l) => lines.push(l) });
    return { rows, lines };
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

test("the demo federation trains, merges and evaluates both methods round after round (tiny size)", async () => {
  const { rows, lines } = await runDemoIn("demo", {
    nodes: 3,
    rounds: 2,
    rank: 4,
    epochs: 2,
    skew: 2,
    seed: 1,
    trainPerClass: 60,
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
});

test("with --dp, federations with central DP run beside them and each round reports its ε", async () => {
  const { rows, lines } = await runDemoIn("demo-dp", {
    nodes: 2,
    rounds: 2,
    rank: 4,
    epochs: 1,
    skew: 1,
    seed: 2,
    trainPerClass: 40,
    dp: [1],
  });
  const dp = rows.filter((r) => r.method === "DP z=1");
  assert.deepEqual(
    dp.map((r) => r.round),
    [1, 2],
  );
  // Two of two nodes each round (sampling rate 1), noise multiplier 1: the accountant's ε.
  assert.ok(
    Math.abs(dp[0].epsilon! - epsilonOf({ q: 1, noiseMultiplier: 1, steps: 1 }, 1e-5).epsilon) < 1e-9,
  );
  assert.ok(
    Math.abs(dp[1].epsilon! - epsilonOf({ q: 1, noiseMultiplier: 1, steps: 2 }, 1e-5).epsilon) < 1e-9,
  );
  assert.ok(
    lines.some((l) => /DP z=1 .* ε \d/.test(l)),
    lines.join("\n"),
  );
});

test("with --methods, --ranks and --buffered, the methods and FedBuff run side by side at mixed ranks", async () => {
  const { rows, lines } = await runDemoIn("demo-methods", {
    nodes: 2,
    rounds: 2,
    rank: 4,
    ranks: [4, 8],
    methods: ["rank-partition", "knots", "core-space", "flora"],
    buffered: true,
    epochs: 1,
    skew: 1,
    seed: 3,
    trainPerClass: 40,
  });
  assert.deepEqual(
    rows.map((r) => `${r.round} ${r.method}`),
    [1, 2].flatMap((n) =>
      ["FLoRA", "FedBuff", "KnOTS", "core-space", "rank-partition"].map((m) => `${n} ${m}`),
    ),
  );
  for (const r of rows)
    for (const a of [...r.accuracy.perNode, r.accuracy.global]) assert.ok(a >= 0 && a <= 1);
  assert.ok(
    lines.some((l) =>
      /^\s+2 \| rank-partition .* \| KnOTS .* \| core-space .* \| FLoRA .* \| FedBuff /.test(l),
    ),
    "a side-by-side row per round is printed",
  );
});
