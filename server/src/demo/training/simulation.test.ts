import assert from "node:assert/strict";
import { test } from "node:test";
import { decodeLora } from "./adapter-files.ts";
import { evaluate } from "./local-round.ts";
import { formatRow, simulateFederation } from "./simulation.ts";
import { testFixture } from "./testing/fixtures.ts";

test("end to end without a coordinator: 4 nodes, 3 rounds, FroM and FedAvg merged by the engine", async () => {
  const { task, base } = await testFixture();
  const baseline = await evaluate({ task, base, adapter: null });
  console.log(`base   | global ${(100 * baseline.global).toFixed(1)}%`);
  const rows = await simulateFederation({
    task,
    base,
    rounds: 3,
    methods: [{ method: "from" }, { method: "fedavg" }],
    rank: 4,
    epochs: 3,
    learningRate: 5e-3,
    seed: 1,
    onRound: (row) => console.log(formatRow(row)),
  });
  assert.deepEqual(
    rows.map((r) => `${r.round}:${r.method}`),
    ["1:from", "1:fedavg", "2:from", "2:fedavg", "3:from", "3:fedavg"],
  );
  for (const row of rows) {
    assert.equal(row.merged.perNode.length, 4);
    for (const f of decodeLora(row.adapter, `round ${row.round}`).weights.values()) assert.equal(f.rank, 4);
  }
  for (const method of ["from", "fedavg"]) {
    const [first, last] = [
      rows.find((r) => r.method === method)!,
      rows.findLast((r) => r.method === method)!,
    ];
    assert.ok(
      last.merged.global > baseline.global + 0.25,
      `${method}: merged global accuracy ${last.merged.global} vs base ${baseline.global}`,
    );
    assert.ok(last.merged.global > first.merged.global, `${method}: no progress after round 1`);
  }
});
