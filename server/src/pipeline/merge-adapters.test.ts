import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createMergePool } from "../compute/merge-pool.ts";
import type { MergeRunner } from "../core/merge-runner.ts";
import { MergeInputError } from "../merge/errors.ts";
import { resolveOptions } from "../merge/options.ts";
import { type LazyAdapter, lazyAdapter, parseSafetensors, readAdapter } from "../peft/index.ts";
import { llamaQV, writeSyntheticAdapter } from "../peft/synthetic-adapter.ts";
import { checkCompatible, mergeAdapters, mergeLazyAdapters } from "./merge-adapters.ts";

describe("merging whole adapters", () => {
  let root: string;
  let pool: MergeRunner;
  const dirs: string[] = [];

  before(async () => {
    root = await mkdtemp(join(tmpdir(), "tributary-pipeline-"));
    pool = await createMergePool({ threads: 0 });
    for (let i = 0; i < 3; i++) {
      const dir = join(root, `c${i}`);
      await writeSyntheticAdapter(dir, {
        modules: llamaQV(2, 32),
        rank: 2 + 2 * i,
        seed: i + 1,
        dtype: "F16",
      });
      dirs.push(dir);
    }
  });
  after(async () => {
    await pool.close();
    await rm(root, { recursive: true, force: true });
  });

  async function lazy(dir: string, reads: string[]): Promise<LazyAdapter> {
    const bytes = new Uint8Array(await readFile(join(dir, "adapter_model.safetensors")));
    const parsed = parseSafetensors(bytes, dir);
    const config = await readFile(join(dir, "adapter_config.json"), "utf8");
    return lazyAdapter(
      config,
      parsed.tensors,
      async (name) => {
        reads.push(name);
        return parsed.tensors.get(name)!.bytes;
      },
      dir,
    );
  }

  it("module-at-a-time merge equals the in-memory merge, reading each tensor once", async () => {
    const opts = resolveOptions({ method: "from", rank: 3 });
    const eager = await mergeAdapters(await Promise.all(dirs.map(readAdapter)), opts, pool);
    const reads: string[] = [];
    const streamed = await mergeLazyAdapters(await Promise.all(dirs.map((d) => lazy(d, reads))), opts, pool);
    assert.deepEqual([...streamed.modules.keys()], [...eager.modules.keys()]);
    for (const [name, entry] of eager.modules) {
      const other = streamed.modules.get(name)!;
      assert.deepEqual(other.result.merged.a, entry.result.merged.a, name);
      assert.deepEqual(other.result.merged.b, entry.result.merged.b, name);
    }
    assert.equal(reads.length, 3 * 4 * 2); // 3 clients × 4 modules × (A, B)
    assert.equal(new Set(reads).size, 4 * 2);
  });

  it("rejects inputs that disagree, naming the adapter and module", async () => {
    const other = join(root, "other");
    await writeSyntheticAdapter(other, { modules: llamaQV(1, 32), rank: 2, seed: 9 });
    const inputs = await Promise.all([dirs[0], other].map((d) => lazy(d, [])));
    assert.throws(
      () => checkCompatible(inputs),
      (err: unknown) =>
        err instanceof MergeInputError &&
        /other: missing module model\.layers\.1\.self_attn\.q_proj/.test(err.message),
    );
  });
});
