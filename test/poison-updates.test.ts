/**
 * No single client can fail a round: updates that intake used to accept and
 * the merge then choked on — factors named so that the merge pairs them
 * differently, a `lora_alpha` of 1e300 or 1e-300, factors whose product
 * overflows float32 — are refused at intake with INVALID_ARGUMENT naming the
 * tensor or field, and the round publishes exactly the merge of the honest
 * clients. Each case runs with the poisoning client sorted first and last
 * (merge order is client order), against the real coordinator.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import {
  FetchAdapterRequestSchema,
  parseSafetensorsLayout,
  safetensorsHeaderLength,
} from "@tributary/protocol";
import { assertEqualsDirectMerge } from "./helpers/direct-merge.ts";
import { expectError, waitFor } from "./helpers/expect.ts";
import { type Fixture, joinAll, MODULES, startFixture, type TestClient } from "./helpers/federation.ts";
import { fetchAdapter, upload } from "./helpers/grpc-calls.ts";

type Header = Record<
  string,
  { dtype: string; shape: number[]; data_offsets: [number, number] } | Record<string, string>
>;

/** Rewrites the safetensors header of `bytes` (the data is kept as it is). */
function withHeader(bytes: Uint8Array, edit: (header: Header) => Header): Uint8Array {
  const n = safetensorsHeaderLength(bytes, bytes.length, "poison");
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Header;
  let text = new TextEncoder().encode(JSON.stringify(edit(header)));
  const padded = Math.ceil(text.length / 8) * 8;
  text = new Uint8Array([...text, ...new Array(padded - text.length).fill(0x20)]);
  const data = bytes.subarray(8 + n);
  const out = new Uint8Array(8 + text.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(text.length), true);
  out.set(text, 8);
  out.set(data, 8 + text.length);
  return out;
}

/** Renames tensor `from` to `to`, keeping its place in the header. */
const rename = (from: string, to: string) => (h: Header) =>
  Object.fromEntries(Object.entries(h).map(([k, v]) => [k === from ? to : k, v])) as Header;

/** Fills every value of tensor `name` with about 1e19. */
function hugeValues(bytes: Uint8Array, name: string): Uint8Array {
  const n = safetensorsHeaderLength(bytes, bytes.length, "poison");
  const t = parseSafetensorsLayout(bytes.subarray(8, 8 + n), bytes.length, "poison").tensors.get(name)!;
  const out = new Uint8Array(bytes);
  const pattern = t.dtype === "F32" ? [0x23, 0xc7, 0x0a, 0x5f] : [0x0a, 0x5f]; // 1e19 as F32, ≈1e19 as BF16
  for (let i = 0; i < t.byteLength; i++) out[t.offset + i] = pattern[i % pattern.length];
  return out;
}

interface Poison {
  readonly name: string;
  /** The poisoned files, from an honest client's. */
  make(c: TestClient, module: string): { configJson: string; bytes: Uint8Array };
  /** The reason and what the metadata must name. */
  readonly reason: "INVALID_TENSOR" | "INVALID_FIELD" | "MALFORMED_ADAPTER";
  readonly names: (module: string) => Record<string, string>;
  readonly message: RegExp;
}

const A = (m: string) => `base_model.model.${m}.lora_A.weight`;
const B = (m: string) => `base_model.model.${m}.lora_B.weight`;
const alpha = (c: TestClient, value: number) =>
  JSON.stringify({ ...JSON.parse(c.configJson), lora_alpha: value });

const POISONS: Poison[] = [
  {
    name: "lora_B without the base_model.model. prefix",
    make: (c, m) => ({
      configJson: c.configJson,
      bytes: withHeader(c.bytes, rename(B(m), `${m}.lora_B.weight`)),
    }),
    reason: "INVALID_TENSOR",
    names: () => ({}),
    message: /are LoRA factors of the same module|not in the canonical PEFT form|has no matching/,
  },
  {
    name: "an adapter name on lora_A only",
    make: (c, m) => ({
      configJson: c.configJson,
      bytes: withHeader(c.bytes, rename(A(m), `base_model.model.${m}.lora_A.evil.weight`)),
    }),
    reason: "INVALID_TENSOR",
    names: () => ({}),
    message: /are LoRA factors of the same module|not in the canonical PEFT form|has no matching/,
  },
  {
    name: "lora_embedding_A with a linear lora_B",
    make: (c, m) => ({
      configJson: c.configJson,
      bytes: withHeader(c.bytes, rename(A(m), `base_model.model.${m}.lora_embedding_A`)),
    }),
    reason: "INVALID_TENSOR",
    names: () => ({}),
    message: /are LoRA factors of the same module|not in the canonical PEFT form|has no matching/,
  },
  {
    name: "lora_alpha 1e300",
    make: (c) => ({ configJson: alpha(c, 1e300), bytes: c.bytes }),
    reason: "INVALID_FIELD",
    names: () => ({ field: "lora_alpha" }),
    message: /LoRA scaling .* expected 0\.000001 to 1000000|scaling [\d.e+]+ \(lora_alpha/,
  },
  {
    name: "lora_alpha 1e-300",
    make: (c) => ({ configJson: alpha(c, 1e-300), bytes: c.bytes }),
    reason: "INVALID_FIELD",
    names: () => ({ field: "lora_alpha" }),
    message: /LoRA scaling/,
  },
  {
    name: "factors of about 1e19 (their product overflows float32)",
    make: (c, m) => ({ configJson: c.configJson, bytes: hugeValues(hugeValues(c.bytes, A(m)), B(m)) }),
    reason: "INVALID_TENSOR",
    names: (m) => ({ tensor: A(m) }),
    message: /beyond ±65504/,
  },
];

describe("poisoned updates are refused at intake; the round merges the honest clients", {
  timeout: 180_000,
}, () => {
  let fx: Fixture;
  before(async () => {
    fx = await startFixture({ clients: 1 });
  });
  after(async () => {
    await fx?.close();
  });

  for (const [p, poison] of POISONS.entries()) {
    for (const order of ["first", "last"] as const) {
      it(`${poison.name}, poisoning client sorted ${order}`, async () => {
        const fed = await fx.addFederation({
          id: `poison-${p}-${order}`,
          clients: 4,
          minClients: 4,
          quorum: 3,
        });
        await joinAll(fx.client, fed);
        const bad = order === "first" ? fed.clients[0] : fed.clients[3];
        const honest = fed.clients.filter((c) => c !== bad);
        const module = MODULES[0].name;
        const files = poison.make(bad, module);
        const spec = (c: TestClient, f: { configJson: string; bytes: Uint8Array }, id: string) => ({
          federationId: fed.federationId,
          round: 1,
          clientId: c.id,
          updateId: id,
          configJson: f.configJson,
          bytes: f.bytes,
        });
        const meta = await expectError(
          upload(fx.client, bad.token, spec(bad, files, "poison")),
          grpc.status.INVALID_ARGUMENT,
          poison.reason,
          poison.message,
        );
        for (const [k, v] of Object.entries(poison.names(module))) assert.equal(meta[k], v, `metadata ${k}`);
        if (poison.reason === "INVALID_TENSOR") assert.ok(meta.tensor !== undefined, "names the tensor");
        assert.equal(meta.client_id, bad.id);

        for (const c of honest) await upload(fx.client, c.token, spec(c, c, `u-${c.id}`));
        await waitFor(
          "the round to publish",
          () => fx.service.coordinator.rounds(fed.federationId)[0]?.round.state === "published",
          30_000,
        );
        const merged = await fetchAdapter(
          fx.client,
          honest[0].token,
          create(FetchAdapterRequestSchema, {
            federationId: fed.federationId,
            selector: { case: "round", value: 1 },
          }),
        );
        const result = await fx.service.coordinator.result(fed.federationId, 1);
        assert.deepEqual(
          result?.clients,
          honest.map((c) => c.id),
        );
        await assertEqualsDirectMerge(
          { configJson: merged.configJson, safetensors: merged.bytes },
          honest.map((c) => c.dir),
          { rank: 4, samples: [100, 100, 100] },
        );
      });
    }
  }

  it("a client's own config fields and tensor names never reach the merged adapter", async () => {
    const fed = await fx.addFederation({ id: "own-the-result", clients: 3, minClients: 3, quorum: 3 });
    await joinAll(fx.client, fed);
    const [first, ...rest] = fed.clients; // sorts first: its adapter used to be the template
    const configJson = JSON.stringify({
      ...JSON.parse(first.configJson),
      target_modules: ["evil_proj"],
      layers_to_transform: [0],
      modules_to_save: ["lm_head"],
      evil_field: "everyone gets this",
    });
    for (const [c, config] of [
      [first, configJson],
      ...rest.map((r) => [r, r.configJson] as const),
    ] as const) {
      await upload(fx.client, c.token, {
        federationId: fed.federationId,
        round: 1,
        clientId: c.id,
        updateId: `u-${c.id}`,
        configJson: config,
        bytes: c.bytes,
      });
    }
    await waitFor(
      "the round to publish",
      () => fx.service.coordinator.rounds(fed.federationId)[0]?.round.state === "published",
      30_000,
    );
    const merged = await fetchAdapter(
      fx.client,
      first.token,
      create(FetchAdapterRequestSchema, {
        federationId: fed.federationId,
        selector: { case: "round", value: 1 },
      }),
    );
    const config = JSON.parse(merged.configJson) as Record<string, unknown>;
    assert.equal(config.evil_field, undefined);
    assert.equal(config.layers_to_transform, undefined);
    assert.equal(config.modules_to_save, null);
    assert.deepEqual(config.target_modules, ["q_proj", "v_proj"]);
    assert.equal(config.base_model_name_or_path, "synthetic/tiny-llama");
    const n = safetensorsHeaderLength(merged.bytes, merged.bytes.length, "merged");
    const names = [
      ...parseSafetensorsLayout(
        merged.bytes.subarray(8, 8 + n),
        merged.bytes.length,
        "merged",
      ).tensors.keys(),
    ];
    assert.deepEqual(names.sort(), MODULES.flatMap((m) => [A(m.name), B(m.name)]).sort());
    await assertEqualsDirectMerge(
      { configJson: merged.configJson, safetensors: merged.bytes },
      fed.clients.map((c) => c.dir),
      { rank: 4, samples: [100, 100, 100] },
    );
  });
});
