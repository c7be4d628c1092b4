/**
 * The reference for "what the coordinator broadcast": the same merge done
 * directly on the clients' adapter directories with the offline pipeline.
 */
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { type ClientService, FetchAdapterRequestSchema, type GrpcClient } from "@tributary/protocol";
import { main } from "../../server/src/cli/main.ts";
import { createMergePool } from "../../server/src/compute/merge-pool.ts";
import { resolveOptions } from "../../server/src/merge/options.ts";
import { CONFIG_FILE, decodeAdapter, readAdapter, WEIGHTS_FILE } from "../../server/src/peft/index.ts";
import { parseSafetensors } from "../../server/src/peft/safetensors.ts";
import { denseProduct, relativeError } from "../../server/src/peft/testing/fixtures.ts";
import { mergeAdapters } from "../../server/src/pipeline/merge-adapters.ts";
import { fetchAdapter } from "./grpc-calls.ts";

/**
 * Asserts that `adapter` equals the FroM merge (rank `rank`) of the adapters
 * in `dirs` (in merge order, i.e. sorted by client id) with `samples`: every
 * tensor bit for bit as `tributary merge` writes it (run through the CLI's
 * own entry point), and each module's product `s·B·A` as the offline
 * pipeline computes it.
 */
export async function assertEqualsDirectMerge(
  adapter: { readonly configJson: string; readonly safetensors: Uint8Array },
  dirs: readonly string[],
  opts: { readonly rank: number; readonly samples: readonly number[] },
): Promise<void> {
  const pool = await createMergePool({ threads: 0 });
  try {
    const inputs = await Promise.all(dirs.map((d) => readAdapter(d)));
    const direct = await mergeAdapters(
      inputs,
      resolveOptions({ method: "from", rank: opts.rank, samples: [...opts.samples] }),
      pool,
    );
    const merged = decodeAdapter(adapter.configJson, adapter.safetensors, "broadcast");
    assert.deepEqual([...merged.modules.keys()].sort(), [...direct.modules.keys()].sort());
    for (const [name, entry] of direct.modules) {
      const m = merged.modules.get(name)!;
      const want = denseProduct(entry.result.merged.b, entry.result.merged.a, entry.result.merged.rank);
      const got = denseProduct(m.b, m.a, m.rank, m.scaling);
      assert.ok(relativeError(got, want) < 1e-5, `${name}: broadcast adapter differs from the direct merge`);
    }
  } finally {
    await pool.close();
  }
  await assertSameTensorsAsCliMerge(adapter, dirs, opts);
}

/**
 * Runs `tributary merge --method from --rank R --weights …` (or `merge
 * <args>`, another method's options) on `dirs` (in
 * merge order: a round merges in client-id order, and the order of a sum
 * decides its last bits) and asserts that `adapter` holds the same factors
 * bit for bit: the same tensor names, dtype and shapes, every `lora_A` byte
 * for byte, and every `lora_B` times its config's scaling equal entry for
 * entry. The configs differ by design: a round writes the federation's
 * canonical config (`lora_alpha` = the clients' median scaling × r), the
 * command keeps the first input's `lora_alpha`, so each stores `B / s` for
 * its own `s`; `--dtype` is the round's (the federation's canonical dtype).
 */
export async function assertSameTensorsAsCliMerge(
  adapter: { readonly configJson: string; readonly safetensors: Uint8Array },
  dirs: readonly string[],
  opts: { readonly rank: number; readonly samples: readonly number[] } | { readonly args: readonly string[] },
): Promise<void> {
  const out = await mkdtemp(join(tmpdir(), "cli-merge-"));
  try {
    const round = parseSafetensors(adapter.safetensors, "broadcast");
    const dtype = [...round.tensors.values()][0]?.dtype.toLowerCase() ?? "f32";
    const lines: string[] = [];
    const io = { out: (l: string) => lines.push(l), err: (l: string) => lines.push(l) };
    const argv =
      "args" in opts
        ? ["merge", ...opts.args]
        : ["merge", "--method", "from", "--rank", String(opts.rank), "--weights", opts.samples.join(",")];
    argv.push("--dtype", dtype, "--quiet", "--out", join(out, "merged"));
    const rc = await main([...argv, ...dirs], io);
    assert.equal(rc, 0, `tributary merge failed:\n${lines.join("\n")}`);
    const cliBytes = new Uint8Array(await readFile(join(out, "merged", WEIGHTS_FILE)));
    const cliConfig = await readFile(join(out, "merged", CONFIG_FILE), "utf8");
    const cli = parseSafetensors(cliBytes, "tributary merge");
    assert.deepEqual([...round.tensors.keys()].sort(), [...cli.tensors.keys()].sort());
    for (const [name, want] of cli.tensors) {
      const got = round.tensors.get(name)!;
      assert.equal(got.dtype, want.dtype, `${name}: dtype`);
      assert.deepEqual(got.shape, want.shape, `${name}: shape`);
    }
    const mine = decodeAdapter(adapter.configJson, adapter.safetensors, "broadcast");
    const theirs = decodeAdapter(cliConfig, cliBytes, "tributary merge");
    for (const [name, want] of theirs.modules) {
      const got = mine.modules.get(name)!;
      assert.ok(
        Buffer.from(got.a.buffer, got.a.byteOffset, got.a.byteLength).equals(
          Buffer.from(want.a.buffer, want.a.byteOffset, want.a.byteLength),
        ),
        `${name}: lora_A of the broadcast is not bit-identical to tributary merge's`,
      );
      const at = got.b.findIndex((v, i) => v * got.scaling !== want.b[i] * want.scaling);
      assert.equal(
        at,
        -1,
        `${name}: s·lora_B of the broadcast differs from tributary merge's at ${at} (scalings ${got.scaling}, ${want.scaling})`,
      );
    }
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}

/**
 * Downloads round `round`'s merged adapter of `fed` (as its first client),
 * checks its content hash is `contentHash`, and that it equals merging the
 * clients' adapters directly with FroM at `rank` (sample counts 100, 200, …).
 */
export async function assertRoundEqualsDirectMerge(
  client: GrpcClient<typeof ClientService>,
  fed: {
    readonly federationId: string;
    readonly clients: readonly { readonly token: string; readonly dir: string }[];
  },
  expected: { readonly round: number; readonly contentHash: string; readonly rank: number },
): Promise<void> {
  const adapter = await fetchAdapter(
    client,
    fed.clients[0].token,
    create(FetchAdapterRequestSchema, {
      federationId: fed.federationId,
      selector: { case: "round", value: expected.round },
    }),
  );
  assert.equal(adapter.contentHash, expected.contentHash);
  await assertEqualsDirectMerge(
    { configJson: adapter.configJson, safetensors: adapter.bytes },
    fed.clients.map((c) => c.dir),
    { rank: expected.rank, samples: fed.clients.map((_, i) => 100 * (i + 1)) },
  );
}
