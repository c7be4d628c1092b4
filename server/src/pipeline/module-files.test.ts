import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { AdapterFormatError } from "@tributary/protocol";
import { fileModuleSource } from "../compute/file-module-source.ts";
import { createMergePool } from "../compute/merge-pool.ts";
import type { MergeRunner } from "../core/merge-runner.ts";
import { resolveOptions } from "../merge/options.ts";
import { openAdapterDir, parseSafetensors, readAdapter } from "../peft/index.ts";
import { llamaQV, writeSyntheticAdapter } from "../peft/synthetic-adapter.ts";
import { mergeAdapters, mergeLazyAdapters } from "./merge-adapters.ts";
import { moduleFiles } from "./module-files.ts";

/** `pool` counting how many modules it merged from files. */
function counting(pool: MergeRunner): { pool: MergeRunner; fromFiles: () => number } {
  let n = 0;
  return {
    pool: {
      ...pool,
      mergeModule: pool.mergeModule,
      mergeDense: pool.mergeDense,
      close: pool.close,
      async mergeFiles(files, opts) {
        n++;
        return pool.mergeFiles(files, opts);
      },
    },
    fromFiles: () => n,
  };
}

describe("merging modules from their files", () => {
  let root: string;
  let pool: MergeRunner;
  const dirs: string[] = [];
  // The product-only route, so that every module qualifies.
  const opts = resolveOptions({ method: "from", rank: 3, truncation: { route: "stream" } });

  before(async () => {
    root = await mkdtemp(join(tmpdir(), "tributary-module-files-"));
    pool = await createMergePool({ threads: 1 });
    for (let i = 0; i < 4; i++) {
      const dir = join(root, `c${i}`);
      await writeSyntheticAdapter(dir, {
        modules: llamaQV(2, 32),
        rank: 2 + i,
        seed: i + 1,
        dtype: i % 2 === 0 ? "F32" : "BF16",
      });
      dirs.push(dir);
    }
  });
  after(async () => {
    await pool.close();
    await rm(root, { recursive: true, force: true });
  });

  it("a worker reading the files on every pass gives the merge of the held modules", async () => {
    assert.ok(pool.readsFiles, `the ${pool.backend.name} workers read files`);
    const eager = await mergeAdapters(await Promise.all(dirs.map(readAdapter)), opts, pool);
    const inputs = await Promise.all(dirs.map(openAdapterDir));
    try {
      const spy = counting(pool);
      const got = await mergeLazyAdapters(inputs, opts, spy.pool);
      assert.equal(spy.fromFiles(), 4, "every module was merged from its files");
      for (const [name, entry] of eager.modules) {
        const other = got.modules.get(name)!;
        assert.equal(other.result.report.solver, "stream", name);
        assert.equal(other.result.report.iterations, entry.result.report.iterations, name);
        assert.deepEqual(other.result.merged.a, entry.result.merged.a, name);
        assert.deepEqual(other.result.merged.b, entry.result.merged.b, name);
      }
    } finally {
      await Promise.all(inputs.map((i) => i.close()));
    }
  });

  it("only locates modules whose every input is a file", async () => {
    const inputs = await Promise.all(dirs.map(openAdapterDir));
    try {
      const files = moduleFiles(inputs, "model.layers.1.self_attn.v_proj");
      assert.ok(files);
      assert.deepEqual(
        files.clients.map((c) => c.rank),
        [2, 3, 4, 5],
      );
      assert.equal(files.dOut, 8);
      assert.equal(moduleFiles(inputs, "model.layers.9.self_attn.v_proj"), undefined);
      const lazyOnly = { ...inputs[0], locate: undefined };
      assert.equal(moduleFiles([lazyOnly, ...inputs.slice(1)], "model.layers.1.self_attn.v_proj"), undefined);
      // A source reads each factor as stored, decoded to float32.
      const source = fileModuleSource(files);
      try {
        const held = await inputs[1].loadModule("model.layers.1.self_attn.v_proj");
        assert.deepEqual(source.read(1, "a"), held.a);
        assert.deepEqual(source.read(1, "b"), held.b);
      } finally {
        source.close();
      }
    } finally {
      await Promise.all(inputs.map((i) => i.close()));
    }
  });

  it("a NaN that a worker reads is named by file and tensor, as the main thread's reader would", async () => {
    const bad = join(root, "bad");
    await writeSyntheticAdapter(bad, { modules: llamaQV(2, 32), rank: 2, seed: 7, dtype: "F32" });
    const path = join(bad, "adapter_model.safetensors");
    const bytes = new Uint8Array(await readFile(path));
    const name = "base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight";
    const t = parseSafetensors(bytes, bad).tensors.get(name);
    assert.ok(t, name);
    new DataView(bytes.buffer).setFloat32(t.bytes.byteOffset + 4 * 5, Number.NaN, true);
    await writeFile(path, bytes);
    const inputs = await Promise.all([dirs[0], bad].map(openAdapterDir));
    try {
      await assert.rejects(
        mergeLazyAdapters(inputs, opts, pool),
        (err: unknown) =>
          err instanceof AdapterFormatError &&
          err.tensor === name &&
          err.file.endsWith("bad/adapter_model.safetensors") &&
          /non-finite value NaN at index 5/.test(err.message),
      );
    } finally {
      await Promise.all(inputs.map((i) => i.close()));
    }
  });
});
