import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { selectBackend } from "../compute/backend.ts";
import { mergeModule } from "../merge/engine.ts";
import { KNOTS_RELATIVE_TOL } from "../merge/methods/knots.ts";
import { resolveOptions } from "../merge/options.ts";
import { coreSpaceDense, knotsDense, rankPartitionDense, truncatedSvd } from "../merge/reference/index.ts";
import { parseSafetensors, readAdapter } from "../peft/index.ts";
import { llamaQV, writeSyntheticAdapter } from "../peft/synthetic-adapter.ts";
import { denseProduct, relativeError } from "../peft/testing/fixtures.ts";
import { groupModule } from "../pipeline/merge-adapters.ts";
import { type CliIo, main } from "./main.ts";
import type { MergeReport } from "./merge-report.ts";

const run = promisify(execFile);
const modules = llamaQV(2, 64);

function capture(): CliIo & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, out: (l) => stdout.push(l), err: (l) => stderr.push(l) };
}

describe("tributary merge", () => {
  let root: string;
  let inputs: string[];

  before(async () => {
    await selectBackend();
    root = await mkdtemp(join(tmpdir(), "tributary-cli-"));
    inputs = [join(root, "c1"), join(root, "c2"), join(root, "c3")];
    await writeSyntheticAdapter(inputs[0], { modules, rank: 4, seed: 1, dtype: "F32" });
    await writeSyntheticAdapter(inputs[1], { modules, rank: 8, seed: 2, dtype: "BF16", bScale: 0.03 });
    await writeSyntheticAdapter(inputs[2], { modules, rank: 8, seed: 3, useRslora: true, alpha: 4 });
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it("writes a PEFT adapter equal to the direct merge, a summary and a JSON report", async () => {
    const out = join(root, "merged-from");
    const report = join(root, "report.json");
    const io = capture();
    const code = await main(
      [
        "merge",
        "--method",
        "from",
        "--rank",
        "6",
        "--threads",
        "0",
        "--quiet",
        "--report",
        report,
        "--out",
        out,
        ...inputs,
      ],
      io,
    );
    assert.equal(code, 0, io.stderr.join("\n"));
    const adapters = await Promise.all(inputs.map(readAdapter));
    const merged = await readAdapter(out);
    const opts = resolveOptions({ method: "from", rank: 6 });
    for (const m of modules) {
      const direct = mergeModule(groupModule(adapters, m.name), opts).merged;
      const written = merged.modules.get(m.name)!;
      assert.equal(written.rank, 6);
      const expected = denseProduct(direct.b, direct.a, direct.rank);
      const got = denseProduct(written.b, written.a, written.rank, written.scaling);
      assert.ok(relativeError(got, expected) < 1e-5, `${m.name}: written adapter differs from the merge`);
    }
    const json = JSON.parse(await readFile(report, "utf8")) as MergeReport;
    assert.deepEqual(Object.keys(json.modules).sort(), modules.map((m) => m.name).sort());
    for (const entry of Object.values(json.modules)) {
      assert.equal(entry.weights.length, 3);
      assert.ok(Math.abs(entry.weights.reduce((s, w) => s + w, 0) - 1) < 1e-9);
      assert.equal(typeof entry.objective, "number");
      assert.ok(Number.isInteger(entry.iterations));
    }
    assert.match(io.stdout[0], /^module\s+rank\s+solver\s+iters\s+objective\s+time\s+weights/);
    for (const m of modules)
      assert.ok(
        io.stdout.some((l) => l.startsWith(m.name)),
        `summary lacks ${m.name}`,
      );
    assert.match(io.stderr[0], /^tensor backend: (blas|wasm|cpu|tensorflow)/);
  });

  it("merges with KnOTS, each client trimmed over its whole adapter, on worker threads: the dense KnOTS procedure", async () => {
    const out = join(root, "merged-knots");
    const io = capture();
    const code = await main(
      [
        "merge",
        "--method",
        "knots",
        "--knots-combine",
        "dare-ties",
        "--dare-p",
        "0.2",
        "--seed",
        "9",
        "--top-k",
        "30",
        "--scale",
        "0.5",
        "--threads",
        "1",
        "--quiet",
        "--out",
        out,
        ...inputs,
      ],
      io,
    );
    assert.equal(code, 0, io.stderr.join("\n"));
    const adapters = await Promise.all(inputs.map(readAdapter));
    const merged = await readAdapter(out);
    const groups = modules.map((m) => groupModule(adapters, m.name));
    const want = knotsDense(groups, {
      combine: "dare-ties",
      dareP: 0.2,
      seed: 9,
      topK: 30,
      scope: "adapter",
      alpha: 0.5,
      tol: KNOTS_RELATIVE_TOL,
    });
    modules.forEach((m, i) => {
      const written = merged.modules.get(m.name)!;
      assert.equal(written.rank, Math.min(20, m.dOut), `${m.name}: rank Σ r_i, at most dOut`);
      const got = denseProduct(written.b, written.a, written.rank, written.scaling);
      const e = relativeError(got, Float64Array.from(want[i].to1DArray()));
      assert.ok(e < 1e-5, `${m.name}: relative error ${e}`);
    });
  });

  it("merges in Core Space: the dense Core Space procedure, module by module", async () => {
    const out = join(root, "merged-core");
    const io = capture();
    const code = await main(
      [
        "merge",
        "--method",
        "core-space",
        "--core-combine",
        "ties",
        "--top-k",
        "25",
        "--scale",
        "0.7",
        "--quiet",
        "--out",
        out,
        ...inputs,
      ],
      io,
    );
    assert.equal(code, 0, io.stderr.join("\n"));
    const adapters = await Promise.all(inputs.map(readAdapter));
    const merged = await readAdapter(out);
    for (const m of modules) {
      const want = coreSpaceDense(groupModule(adapters, m.name), {
        combine: "ties",
        topK: 25,
        dareP: 0.5,
        seed: 0,
        alpha: 0.7,
      });
      const written = merged.modules.get(m.name)!;
      const got = denseProduct(written.b, written.a, written.rank, written.scaling);
      const e = relativeError(got, Float64Array.from(want.to1DArray()));
      assert.ok(e < 1e-5, `${m.name}: relative error ${e}`);
    }
  });

  it("aggregates by rank partitions (ranks 4, 8, 8): the best rank-8 approximation of the dense partition means", async () => {
    const out = join(root, "merged-partitions");
    const io = capture();
    const code = await main(
      ["merge", "--method", "rank-partition", "--weights", "30,10,20", "--quiet", "--out", out, ...inputs],
      io,
    );
    assert.equal(code, 0, io.stderr.join("\n"));
    const adapters = await Promise.all(inputs.map(readAdapter));
    const merged = await readAdapter(out);
    for (const m of modules) {
      const t = truncatedSvd(rankPartitionDense(groupModule(adapters, m.name), [30, 10, 20]), 8);
      const written = merged.modules.get(m.name)!;
      assert.equal(written.rank, 8);
      const got = denseProduct(written.b, written.a, written.rank, written.scaling);
      const e = relativeError(got, Float64Array.from(t.b.mmul(t.a).to1DArray()));
      assert.ok(e < 1e-5, `${m.name}: relative error ${e}`);
    }
  });

  it("writes the requested dtype and FedAvg weights from --weights", async () => {
    const out = join(root, "merged-fedavg");
    const report = join(root, "fedavg.json");
    const io = capture();
    const code = await main(
      [
        "merge",
        "--method",
        "fedavg",
        "--dtype",
        "bf16",
        "--weights",
        "100,300,0",
        "--threads",
        "0",
        "--quiet",
        "--report",
        report,
        "--out",
        out,
        ...inputs,
      ],
      io,
    );
    assert.equal(code, 0, io.stderr.join("\n"));
    const file = parseSafetensors(await readFile(join(out, "adapter_model.safetensors")), "merged");
    for (const t of file.tensors.values()) assert.equal(t.dtype, "BF16");
    const json = JSON.parse(await readFile(report, "utf8")) as MergeReport;
    for (const entry of Object.values(json.modules)) assert.deepEqual(entry.weights, [0.25, 0.75, 0]);
  });

  it("exits 2 with the usage on an unknown method or a bad flag", async () => {
    for (const args of [
      ["merge", "--method", "average", "--out", join(root, "x"), inputs[0]],
      ["merge", "--method", "from", "--rank", "two", "--out", join(root, "x"), inputs[0]],
      ["merge", "--method", "from", inputs[0]],
      ["merge", "--method", "fedavg", "--weights", "1,2", "--out", join(root, "x"), ...inputs],
      ["merge", "--method", "from", "--bogus", "--out", join(root, "x"), inputs[0]],
    ]) {
      const io = capture();
      assert.equal(await main(args, io), 2, args.join(" "));
      assert.match(io.stderr.join("\n"), /Usage: tributary merge/);
    }
    const io = capture();
    await main(["merge", "--method", "average", "--out", join(root, "x"), inputs[0]], io);
    assert.match(io.stderr[0], /unknown merge method "average" \(expected one of from, lore, fr/);
  });

  it("exits 1 naming the file and tensor for unusable inputs", async () => {
    const missing = capture();
    assert.equal(
      await main(["merge", "--method", "from", "--out", join(root, "y"), join(root, "nope")], missing),
      1,
    );
    assert.match(missing.stderr[0], /nope: adapter directory not found/);

    // A NaN written into client 2's first q_proj lora_B value.
    const bad = join(root, "nan");
    await writeSyntheticAdapter(bad, { modules, rank: 4, seed: 9 });
    const path = join(bad, "adapter_model.safetensors");
    const bytes = new Uint8Array(await readFile(path));
    const parsed = parseSafetensors(bytes, path);
    const name = "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight";
    const tensor = parsed.tensors.get(name)!;
    new DataView(tensor.bytes.buffer, tensor.bytes.byteOffset).setFloat32(0, Number.NaN, true);
    await writeFile(path, bytes);
    const nan = capture();
    assert.equal(await main(["merge", "--method", "from", "--out", join(root, "y"), inputs[0], bad], nan), 1);
    // Tensors are read (and checked) when their module is merged, after the backend line.
    assert.match(
      nan.stderr.at(-1) ?? "",
      new RegExp(`nan/adapter_model.safetensors.*${name.replaceAll(".", "\\.")}.*NaN`),
    );

    // Different shapes: hidden 32 instead of 64.
    const other = join(root, "small");
    await writeSyntheticAdapter(other, { modules: llamaQV(2, 32), rank: 4, seed: 5 });
    const shapes = capture();
    assert.equal(
      await main(["merge", "--method", "from", "--out", join(root, "y"), inputs[0], other], shapes),
      1,
    );
    assert.match(
      shapes.stderr[0],
      /small: module model\.layers\.0\.self_attn\.q_proj maps 32→32, expected 64→64/,
    );

    const base = join(root, "base");
    await writeSyntheticAdapter(base, { modules, rank: 4, seed: 6, baseModel: "other/model" });
    const mismatch = capture();
    assert.equal(
      await main(["merge", "--method", "from", "--out", join(root, "y"), inputs[0], base], mismatch),
      1,
    );
    assert.match(mismatch.stderr[0], /base model "other\/model" differs from "synthetic\/tiny-llama"/);
  });

  it("refuses an --out that is an existing file or one of its inputs before merging anything", async () => {
    const file = join(root, "exists.txt");
    await writeFile(file, "keep me");
    const onFile = capture();
    assert.equal(await main(["merge", "--method", "from", "--out", file, inputs[0], inputs[1]], onFile), 1);
    assert.deepEqual(onFile.stderr, [
      `tributary: --out ${file}: exists and is not a directory; name a new directory for the merged adapter`,
    ]);
    assert.equal(await readFile(file, "utf8"), "keep me");

    const before = await readFile(join(inputs[0], "adapter_model.safetensors"));
    const onInput = capture();
    assert.equal(
      await main(["merge", "--method", "from", "--out", `${inputs[0]}/`, inputs[0], inputs[1]], onInput),
      1,
    );
    assert.equal(onInput.stderr.length, 1, "one line, before the backend or progress lines");
    assert.match(onInput.stderr[0], /is one of the inputs; the merge would overwrite it/);
    assert.ok(before.equals(await readFile(join(inputs[0], "adapter_model.safetensors"))));
  });

  it("names a file that is not safetensors as such", async () => {
    const dir = join(root, "not-safetensors");
    await writeSyntheticAdapter(dir, { modules, rank: 4, seed: 7 });
    await writeFile(join(dir, "adapter_model.safetensors"), "hello world, this is not an adapter\n");
    const io = capture();
    assert.equal(await main(["merge", "--method", "from", "--out", join(root, "z"), inputs[0], dir], io), 1);
    assert.match(
      io.stderr.join("\n"),
      /not-safetensors\/adapter_model\.safetensors: not a safetensors file: its first 8 bytes \("hello wo"\)/,
    );
  });

  it("merges under central DP: clipped uniform mean, seeded or secret noise, refusals before merging", async () => {
    // Three F32 adapters of one rank, so nothing but the DP path differs from a plain FedAvg.
    const dirs = [join(root, "dp1"), join(root, "dp2"), join(root, "dp3")];
    for (const [i, d] of dirs.entries())
      await writeSyntheticAdapter(d, { modules, rank: 4, seed: 20 + i, bScale: 0.01 * (i + 1) });
    const run = async (out: string, ...flags: string[]) => {
      const io = capture();
      const rc = await main(
        [
          "merge",
          "--method",
          "fedavg",
          "--rank",
          "12",
          "--threads",
          "0",
          "--quiet",
          ...flags,
          "--out",
          join(root, out),
          ...dirs,
        ],
        io,
      );
      return {
        rc,
        io,
        bytes: rc === 0 ? await readFile(join(root, out, "adapter_model.safetensors")) : undefined,
      };
    };
    const clipNorm = 0.05;
    const exact = await run("dp-exact", "--clip-norm", String(clipNorm), "--noise-multiplier", "0");
    assert.equal(exact.rc, 0, exact.io.stderr.join("\n"));
    assert.match(
      exact.io.stderr.join("\n"),
      /central DP: uniform mean of 3 updates clipped to 0\.05 \(\d clipped; norms/,
    );
    // The clipped mean, densely: each adapter scaled by min(1, C/‖Θ_i‖) over all its modules, averaged.
    const adapters = await Promise.all(dirs.map((d) => readAdapter(d)));
    const norms = adapters.map((a) =>
      Math.sqrt(
        [...a.modules.values()].reduce(
          (s, m) => s + denseProduct(m.b, m.a, m.rank, m.scaling).reduce((x, v) => x + v * v, 0),
          0,
        ),
      ),
    );
    assert.ok(norms.some((n) => n > clipNorm) && norms.some((n) => n <= clipNorm * 10));
    const merged = await readAdapter(join(root, "dp-exact"));
    for (const [name, m] of merged.modules) {
      const want = new Float64Array((m.b.length / m.rank) * (m.a.length / m.rank));
      for (const [i, a] of adapters.entries()) {
        const t = a.modules.get(name)!;
        const f = Math.min(1, clipNorm / norms[i]) / 3;
        denseProduct(t.b, t.a, t.rank, t.scaling).forEach((v, k) => {
          want[k] += f * v;
        });
      }
      assert.ok(relativeError(denseProduct(m.b, m.a, m.rank, m.scaling), want) < 1e-5, name);
    }
    const seeded1 = await run("dp-seed-1", "--clip-norm", "0.05", "--noise-multiplier", "1", "--seed", "9");
    const seeded2 = await run("dp-seed-2", "--clip-norm", "0.05", "--noise-multiplier", "1", "--seed", "9");
    const secret = await run("dp-secret", "--clip-norm", "0.05", "--noise-multiplier", "1");
    assert.ok(seeded1.bytes?.equals(seeded2.bytes!), "the same --seed, the same noise");
    assert.ok(!seeded1.bytes?.equals(secret.bytes!), "no --seed: secret noise");
    assert.ok(!seeded1.bytes?.equals(exact.bytes!));
    assert.match(secret.io.stderr.join("\n"), /noise from a secret seed/);

    const from = capture();
    assert.equal(
      await main(
        [
          "merge",
          "--method",
          "from",
          "--rank",
          "4",
          "--clip-norm",
          "1",
          "--noise-multiplier",
          "1",
          "--out",
          join(root, "x"),
          ...dirs,
        ],
        from,
      ),
      2,
    );
    assert.match(from.stderr[0], /central DP merges the uniform mean of clipped updates \(method fedavg\)/);
    const half = capture();
    assert.equal(
      await main(
        ["merge", "--method", "fedavg", "--rank", "4", "--clip-norm", "1", "--out", join(root, "x"), ...dirs],
        half,
      ),
      2,
    );
    assert.match(half.stderr[0], /needs both --clip-norm C and --noise-multiplier Z/);
  });

  it("runs as `npx tributary` from the repository root", async () => {
    const repo = new URL("../../../", import.meta.url).pathname;
    const out = join(root, "merged-npx");
    const { stdout } = await run(
      "npx",
      [
        "--no-install",
        "tributary",
        "merge",
        "--method",
        "ties",
        "--rank",
        "4",
        "--threads",
        "1",
        "--out",
        out,
        ...inputs,
      ],
      { cwd: repo },
    );
    assert.match(stdout, /wrote .*merged-npx/);
    const merged = await readAdapter(out);
    assert.equal(merged.modules.size, modules.length);
    const help = await run("npx", ["--no-install", "tributary", "--help"], { cwd: repo });
    assert.match(help.stdout, /Commands:\n(\s+\w+ .*\n)*\s+merge /);
  });
});
