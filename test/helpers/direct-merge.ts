/**
 * The reference for "what the coordinator broadcast": the same merge done
 * directly on the clients' adapter directories with the offline pipeline.
 */
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { type ClientService, FetchAdapterRequestSchema, type GrpcClient } from "@tributary/protocol";
import { createMergePool } from "../../server/src/compute/merge-pool.ts";
import { resolveOptions } from "../../server/src/merge/options.ts";
import { decodeAdapter, readAdapter } from "../../server/src/peft/index.ts";
import { denseProduct, relativeError } from "../../server/src/peft/testing/fixtures.ts";
import { mergeAdapters } from "../../server/src/pipeline/merge-adapters.ts";
import { fetchAdapter } from "./grpc-calls.ts";

/**
 * Asserts that `adapter` equals the FroM merge (rank `rank`) of the adapters
 * in `dirs` (in merge order, i.e. sorted by client id) with `samples`.
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
