import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fromJson, type JsonValue } from "@bufbuild/protobuf";
import { CreateFederationRequestSchema } from "@tributary/protocol";
import { checkInline } from "../coordinator/content-check-pool.ts";
import { openUpdateReader } from "../store/update-reader.ts";
import { federationFromProto } from "../transport/grpc/convert.ts";
import { type CliIo, main } from "./main.ts";

function capture(): CliIo & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, out: (l) => stdout.push(l), err: (l) => stderr.push(l) };
}

const FEDERATION = {
  federationId: "try-me",
  schema: {
    baseModelId: "synthetic/tiny-llama",
    modules: [
      { name: "model.layers.0.self_attn.q_proj", dIn: 64, dOut: 64, maxRank: 8 },
      { name: "model.layers.0.self_attn.v_proj", dIn: 64, dOut: 16, maxRank: 8 },
    ],
    allowedDtypes: ["DTYPE_BF16"],
  },
  merge: { method: "fedavg" },
  policy: { minClients: 2, quorum: 2 },
};

describe("tributary adapters synth", () => {
  let root: string;
  let schemaFile: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), "tributary-synth-"));
    schemaFile = join(root, "federation.json");
    await writeFile(schemaFile, JSON.stringify(FEDERATION));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it("writes adapters that the coordinator's intake accepts for that federation, the same bytes for the same seed", async () => {
    const io = capture();
    const out = join(root, "adapters");
    assert.equal(
      await main(["adapters", "synth", "--schema", schemaFile, "--out", out, "--clients", "2"], io),
      0,
    );
    assert.deepEqual(io.stdout, [join(out, "client-1"), join(out, "client-2")]);
    assert.match(io.stderr[0], /wrote 2 adapter\(s\) for federation "try-me" \(2 modules, rank 8, BF16\)/);

    const federation = {
      ...federationFromProto(fromJson(CreateFederationRequestSchema, FEDERATION as unknown as JsonValue)),
      createdAt: 0,
    };
    for (const dir of io.stdout) {
      const configJson = await readFile(join(dir, "adapter_config.json"), "utf8");
      const reader = await openUpdateReader(join(dir, "adapter_model.safetensors"), dir, new Set());
      try {
        const modules = await checkInline({ federation, clientId: "c", configJson, reader });
        assert.deepEqual(Object.keys(modules).sort(), FEDERATION.schema.modules.map((m) => m.name).sort());
        assert.ok([...reader.tensors.values()].every((t) => t.dtype === "BF16"));
      } finally {
        await reader.close();
      }
    }
    const again = join(root, "again");
    assert.equal(
      await main(["adapters", "synth", "--schema", schemaFile, "--out", again, "--clients", "1"], capture()),
      0,
    );
    const a = await readFile(join(out, "client-1", "adapter_model.safetensors"));
    assert.ok(a.equals(await readFile(join(again, "client-1", "adapter_model.safetensors"))));
    assert.ok(!a.equals(await readFile(join(out, "client-2", "adapter_model.safetensors"))));
  });

  it("refuses what the federation would refuse, and an existing client directory, in one line", async () => {
    const out = join(root, "adapters");
    const cases: [string[], RegExp][] = [
      [["--rank", "16"], /--rank 16: above the schema's smallest max_rank \(8\)/],
      [["--dtype", "f32"], /--dtype F32: federation "try-me" accepts BF16/],
      [[], /client-1 already exists; choose another --out or remove it/],
    ];
    for (const [extra, expected] of cases) {
      const io = capture();
      assert.equal(await main(["adapters", "synth", "--schema", schemaFile, "--out", out, ...extra], io), 1);
      assert.equal(io.stderr.length, 1);
      assert.match(io.stderr[0], expected);
    }
    const usage = capture();
    assert.equal(await main(["adapters", "synth", "--out", out], usage), 2);
    assert.match(usage.stderr[0], /adapters synth needs --schema/);
  });
});
