import assert from "node:assert/strict";
import { test } from "node:test";
import { mergeModule } from "../merge/engine.ts";
import { MergeInputError } from "../merge/errors.ts";
import { resolveOptions } from "../merge/options.ts";
import { randomModuleGroup } from "../merge/testing/random-modules.ts";
import { selectBackend } from "./backend.ts";
import { createMergePool } from "./merge-pool.ts";

test("worker threads merge modules in parallel with the same result as in-process", async () => {
  const here = await selectBackend();
  const pool = await createMergePool({ threads: 2 });
  try {
    assert.equal(pool.threads, 2);
    assert.equal(pool.backend.name, here.name, "the workers select what this thread selected");
    const opts = resolveOptions({ method: "from", rank: 3 });
    const groups = [0, 1, 2, 3].map((s) =>
      randomModuleGroup({ seed: s, name: `layers.${s}.q_proj`, dOut: 20, dIn: 24, ranks: [2, 3, 4] }),
    );
    const results = await Promise.all(groups.map((g) => pool.mergeModule(g, opts)));
    results.forEach(({ result, ms }, i) => {
      const local = mergeModule(groups[i], opts);
      assert.equal(result.name, groups[i].name);
      assert.ok(ms >= 0);
      assert.deepEqual(
        result.report.weights.map((w) => w.toFixed(6)),
        local.report.weights.map((w) => w.toFixed(6)),
      );
      let diff = 0;
      let norm = 0;
      for (let j = 0; j < local.merged.b.length; j++) {
        diff += Math.abs(Math.abs(result.merged.b[j]) - Math.abs(local.merged.b[j]));
        norm += Math.abs(local.merged.b[j]);
      }
      assert.ok(diff <= 1e-4 * norm, `module ${i}: ${diff} vs ${norm}`);
    });
  } finally {
    await pool.close();
  }
});

test("errors inside a worker come back typed, naming the module and client", async () => {
  const pool = await createMergePool({ threads: 1 });
  try {
    const g = randomModuleGroup({ seed: 1, name: "layers.0.v_proj", dOut: 8, dIn: 8, ranks: [2, 3] });
    await assert.rejects(
      pool.mergeModule(g, resolveOptions({ method: "fedavg-factors" })),
      (err: unknown) => {
        assert.ok(err instanceof MergeInputError);
        assert.equal(err.module, "layers.0.v_proj");
        assert.equal(err.client, 1);
        assert.match(err.message, /client 1 has rank 3/);
        return true;
      },
    );
    // the pool still works after an error
    const ok = await pool.mergeModule(g, resolveOptions({ method: "fedavg", rank: 2 }));
    assert.equal(ok.result.merged.rank, 2);
  } finally {
    await pool.close();
  }
});

test("a pool asked for webgpu runs its workers on Dawn and merges as in-process does", async () => {
  const pool = await createMergePool({ threads: 1, backend: "webgpu" });
  try {
    assert.equal(pool.backend.name, "webgpu");
    assert.ok((pool.backend.adapter ?? "").length > 0, "the adapter's description is reported");
    const opts = resolveOptions({ method: "from", rank: 3, truncation: { route: "subspace", tol: 1e-9 } });
    const g = randomModuleGroup({ seed: 4, name: "layers.1.q_proj", dOut: 20, dIn: 24, ranks: [2, 3, 4] });
    const { result } = await pool.mergeModule(g, opts);
    const local = mergeModule(g, opts);
    assert.equal(result.report.solver, "subspace");
    const o = result.report.objective ?? Number.NaN;
    const want = local.report.objective ?? Number.NaN;
    assert.ok(Math.abs(o - want) <= 1e-4 * want, `objective ${o} vs ${want}`);
  } finally {
    await pool.close();
  }
});

test("without a GPU device node, automatic selection does not load Dawn and says why", async () => {
  const { hasGpuDeviceNode } = await import("./webgpu-device.ts");
  const { isSoftwareAdapter } = await import("./webgpu-protocol.ts");
  const software = { vendor: "mesa", architecture: "software", device: "llvmpipe", description: "llvmpipe" };
  assert.equal(isSoftwareAdapter(software), true);
  assert.equal(
    isSoftwareAdapter({ vendor: "nvidia", architecture: "ada", device: "", description: "NVIDIA H200" }),
    false,
  );
  const info = await selectBackend();
  if (!hasGpuDeviceNode()) {
    assert.notEqual(info.name, "webgpu");
    assert.ok(
      info.skipped.some((s) => /webgpu: no GPU device/.test(s)),
      info.skipped.join("; "),
    );
  } else {
    assert.ok(
      info.name === "webgpu" || info.skipped.some((s) => s.startsWith("webgpu")),
      info.skipped.join("; "),
    );
  }
});
