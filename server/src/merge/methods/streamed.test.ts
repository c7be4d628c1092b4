import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { activate, loadableBackends } from "../../testing/backends.ts";
import { mergeModule } from "../engine.ts";
import { resolveOptions } from "../options.ts";
import { groupSource } from "../streamed-stack.ts";
import { relFrobError } from "../testing/assert-close.ts";
import { denseOfMerged } from "../testing/dense-of.ts";
import { randomModuleGroup } from "../testing/random-modules.ts";
import type { ModuleSource } from "../types.ts";
import { mergeStreamed, streamable } from "./streamed.ts";

const group = randomModuleGroup({
  seed: 41,
  name: "layers.3.q_proj",
  dOut: 36,
  dIn: 30,
  ranks: [2, 3, 2, 4, 1, 2],
});

/** `group` as a source that counts how often each client's factors are read. */
function countingSource(): { source: ModuleSource; reads: { a: number[]; b: number[] } } {
  const reads = { a: group.clients.map(() => 0), b: group.clients.map(() => 0) };
  const inner = groupSource(group);
  return {
    reads,
    source: {
      ...inner,
      read(i, factor) {
        reads[factor][i]++;
        return inner.read(i, factor);
      },
    },
  };
}

const backends = await loadableBackends();

describe("merging from a source (blas)", () => {
  for (const method of ["from", "fedavg", "task-arithmetic"] as const) {
    test(`${method} equals the merge of the held group, reading every client on every pass`, async () => {
      await activate("blas");
      const opts = resolveOptions({
        method,
        rank: 3,
        truncation: { route: "stream" },
        ...(method === "fedavg" ? { samples: [1, 2, 3, 4, 5, 6] } : {}),
      });
      const { source, reads } = countingSource();
      const got = mergeStreamed(source, opts);
      const want = mergeModule(group, opts);
      assert.equal(got.report.solver, "stream");
      assert.deepEqual(
        got.report.weights.map((w) => w.toFixed(9)),
        want.report.weights.map((w) => w.toFixed(9)),
      );
      if (want.report.objective !== null) {
        assert.ok(
          Math.abs((got.report.objective ?? Number.NaN) - want.report.objective) <=
            1e-6 * want.report.objective,
        );
      }
      const err = relFrobError(
        denseOfMerged(got.merged, group.dOut, group.dIn),
        Array.from(denseOfMerged(want.merged, group.dOut, group.dIn)),
      );
      assert.ok(err < 1e-5, `relative error ${err}`);
      // Every pass reads every client once, and only the factor its product needs:
      // A and B for the norms, then for every iteration's products and the final factors.
      for (const f of ["a", "b"] as const) {
        assert.ok(
          reads[f].every((r) => r === reads[f][0] && r >= got.report.iterations),
          `${f} reads ${reads[f]} in ${got.report.iterations} iterations`,
        );
      }
    });
  }

  test("a client whose factors do not have the announced size is named", async () => {
    await activate("blas");
    const opts = resolveOptions({ method: "from", rank: 3, truncation: { route: "stream" } });
    const source: ModuleSource = {
      ...groupSource(group),
      read: (i, factor) => (i === 4 && factor === "a" ? new Float32Array(3) : group.clients[i][factor]),
    };
    assert.throws(
      () => mergeStreamed(source, opts),
      /client 4 read 3 lora_A values and 36 lora_B values, expected 1×30 and 36×1/,
    );
  });

  test("only linear methods at a rank, without norm bounds, on a device with strided products qualify", async () => {
    await activate("blas");
    const stream = { truncation: { route: "stream" as const } };
    assert.ok(streamable(group, resolveOptions({ method: "from", rank: 3, ...stream })));
    assert.ok(!streamable(group, resolveOptions({ method: "from", rank: 3, solver: "als", ...stream })));
    assert.ok(!streamable(group, resolveOptions({ method: "from", rank: "full", ...stream })));
    assert.ok(!streamable(group, resolveOptions({ method: "lore", rank: 3, ...stream })));
    assert.ok(!streamable(group, resolveOptions({ method: "from", rank: 3, normBound: 2, ...stream })));
    assert.ok(
      !streamable(group, resolveOptions({ method: "from", rank: 3, truncation: { route: "subspace" } })),
    );
    for (const other of backends.filter((b) => b !== "blas")) {
      await activate(other);
      assert.ok(!streamable(group, resolveOptions({ method: "from", rank: 3, ...stream })), other);
    }
  });
});
