import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, rm, stat, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { AdapterFormatError } from "@tributary/protocol";
import { parseAdapterConfig } from "./adapter-config.ts";
import { readAdapter, writeAdapter } from "./adapter-dir.ts";
import type { OutputModule } from "./adapter-types.ts";
import { denseProduct, randomArray, relativeError } from "./testing/fixtures.ts";

let root = "";
before(async () => {
  root = await mkdtemp(join(tmpdir(), "tributary-peft-"));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

const template = parseAdapterConfig(
  JSON.stringify({ peft_type: "LORA", r: 2, lora_alpha: 4, base_model_name_or_path: "tiny/base" }),
  "template",
);

function modules(): Map<string, OutputModule> {
  const layout = {
    kind: "linear",
    aShape: [5],
    bShape: [3],
    prefix: "base_model.model.",
    adapterName: "",
  } as const;
  return new Map([
    ["model.layers.0.mlp.up_proj", { a: randomArray(10, 1), b: randomArray(6, 2), rank: 2, layout }],
    ["model.layers.1.mlp.up_proj", { a: randomArray(15, 3), b: randomArray(9, 4), rank: 3, layout }],
  ]);
}

async function rejectsNaming(p: Promise<unknown>, path: string, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof AdapterFormatError, String(err));
    assert.equal(err.file, path);
    assert.ok(err.message.startsWith(`${path}: `), err.message);
    assert.match(err.message, pattern);
    return true;
  });
}

test("writeAdapter creates the directory atomically and readAdapter reads it back", async () => {
  const dir = join(root, "out", "round-1");
  const mods = modules();
  const { bytes } = await writeAdapter(dir, { template, modules: mods, dense: new Map(), dtype: "F32" });
  assert.deepEqual((await readdir(dir)).sort(), ["adapter_config.json", "adapter_model.safetensors"]);
  const sizes = await Promise.all(
    ["adapter_config.json", "adapter_model.safetensors"].map((f) => stat(join(dir, f))),
  );
  assert.equal(bytes, sizes[0].size + sizes[1].size);
  const adapter = await readAdapter(dir);
  assert.equal(adapter.label, dir);
  assert.equal(adapter.baseModel, "tiny/base");
  for (const [name, m] of mods) {
    const d = adapter.modules.get(name)!;
    assert.equal(d.rank, m.rank);
    assert.ok(
      relativeError(denseProduct(d.b, d.a, d.rank, d.scaling), denseProduct(m.b, m.a, m.rank)) < 1e-6,
    );
  }
  // Overwriting leaves no temp files behind.
  await writeAdapter(dir, { template, modules: mods, dense: new Map(), dtype: "BF16" });
  assert.deepEqual((await readdir(dir)).sort(), ["adapter_config.json", "adapter_model.safetensors"]);
  assert.equal((await readAdapter(dir)).dtype, "BF16");
});

test("readAdapter names the missing directory or file", async () => {
  const missing = join(root, "nope");
  await rejectsNaming(readAdapter(missing), missing, /adapter directory not found/);
  const dir = join(root, "partial");
  await mkdir(dir);
  await rejectsNaming(readAdapter(dir), join(dir, "adapter_config.json"), /file not found/);
  await writeFile(join(dir, "adapter_config.json"), "{}");
  await rejectsNaming(
    readAdapter(dir),
    join(dir, "adapter_model.safetensors"),
    /file not found \(only safetensors adapters are supported/,
  );
  const file = join(root, "plain-file");
  await writeFile(file, "x");
  await rejectsNaming(readAdapter(file), file, /not a directory/);
  await unlink(file);
});

test("readAdapter errors inside the files name the directory's files", async () => {
  const dir = join(root, "bad");
  await mkdir(dir);
  await writeFile(join(dir, "adapter_config.json"), "{}");
  await writeFile(join(dir, "adapter_model.safetensors"), new Uint8Array(4));
  await rejectsNaming(readAdapter(dir), `${dir}/adapter_model.safetensors`, /shorter than the 8-byte header/);
});
