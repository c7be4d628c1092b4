/**
 * Fixtures for the coordinator's tests: a small federation, update records,
 * and real PEFT adapters encoded in memory.
 */

import type { TensorDType } from "@tributary/protocol";
import type { Federation, RoundPolicy, RoundResult, UpdateRecord } from "../../core/model.ts";
import { encodeAdapter } from "../../peft/adapter-codec.ts";
import { adapterConfigFromObject } from "../../peft/adapter-config.ts";
import type { OutputModule } from "../../peft/adapter-types.ts";
import { fillUniform, linearLayout } from "../../peft/synthetic-adapter.ts";

/** Base model of `testFederation`. */
export const BASE_MODEL = "tiny/llama-2l";

/** A federation over two modules (q 16→16, v 16→4, max rank 8) accepting F32 and BF16. */
export function testFederation(policy: Partial<RoundPolicy> = {}, id = "fed-1"): Federation {
  return {
    id,
    name: "test federation",
    schema: {
      baseModel: BASE_MODEL,
      modules: [
        { name: "model.layers.0.self_attn.q_proj", dIn: 16, dOut: 16, maxRank: 8 },
        { name: "model.layers.0.self_attn.v_proj", dIn: 16, dOut: 4, maxRank: 8 },
      ],
      dtypes: ["F32", "BF16"],
    },
    merge: { method: "fedavg", rank: 8 },
    policy: {
      minClients: 2,
      quorum: 2,
      waitAfterQuorumMs: 0,
      deadlineMs: 60_000,
      onDeadline: "fail",
      maxUpdateBytes: 1 << 20,
      ...policy,
    },
    createdAt: 0,
  };
}

/** A module of an adapter to encode. */
export interface FixtureModule {
  readonly name: string;
  readonly dIn: number;
  readonly dOut: number;
  readonly rank: number;
}

/** The modules of `testFederation` at rank `rank`. */
export function schemaModules(rank = 4): FixtureModule[] {
  return [
    { name: "model.layers.0.self_attn.q_proj", dIn: 16, dOut: 16, rank },
    { name: "model.layers.0.self_attn.v_proj", dIn: 16, dOut: 4, rank },
  ];
}

/** What `encodeTestAdapter` writes. */
export interface FixtureAdapter {
  readonly modules?: readonly FixtureModule[];
  readonly dtype?: TensorDType;
  /** `null` leaves `base_model_name_or_path` out. */
  readonly baseModel?: string | null;
  readonly seed?: number;
  /** Non-LoRA tensors to add. */
  readonly dense?: ReadonlyMap<string, { shape: number[]; data: Float32Array }>;
}

/** A PEFT adapter (config text + safetensors bytes), seeded, in memory. */
export function encodeTestAdapter(spec: FixtureAdapter = {}): {
  configText: string;
  safetensors: Uint8Array;
} {
  const list = spec.modules ?? schemaModules();
  const base = spec.baseModel === undefined ? BASE_MODEL : spec.baseModel;
  const template = adapterConfigFromObject(
    {
      peft_type: "LORA",
      r: list[0].rank,
      lora_alpha: 2 * list[0].rank,
      ...(base === null ? {} : { base_model_name_or_path: base }),
      target_modules: ["q_proj", "v_proj"],
    },
    "adapter_config.json",
  );
  const modules = new Map<string, OutputModule>();
  list.forEach((m, i) => {
    const seed = (spec.seed ?? 1) * 7919 + i;
    modules.set(m.name, {
      a: fillUniform(new Float32Array(m.rank * m.dIn), seed, 0.25),
      b: fillUniform(new Float32Array(m.dOut * m.rank), seed ^ 0x5bd1e995, 0.01),
      rank: m.rank,
      layout: linearLayout(m.dIn, m.dOut),
    });
  });
  return encodeAdapter({ template, modules, dense: spec.dense ?? new Map(), dtype: spec.dtype ?? "F32" });
}

/** An accepted-update record of `clientId` for `round` (update id `u-<client>-<round>`). */
export function updateRecord(
  clientId: string,
  round: number,
  extra: Partial<UpdateRecord> = {},
): UpdateRecord {
  return {
    federationId: "fed-1",
    round,
    clientId,
    updateId: `u-${clientId}-${round}`,
    samples: 100,
    metrics: {},
    sha256: clientId
      .padEnd(64, "0")
      .replace(/[^0-9a-f]/g, "a")
      .slice(0, 64),
    size: 1024,
    receivedAt: 0,
    configJson: "{}",
    ...extra,
  };
}

/** The result of merging round `round` of `fed-1` into an adapter of content hash `contentHash`. */
export function roundResult(
  round: number,
  contentHash: string,
  extra: Partial<RoundResult> = {},
): RoundResult {
  return {
    federationId: "fed-1",
    round,
    contentHash,
    size: 1024,
    method: "fedavg",
    clients: [],
    weights: [],
    mergedAt: 0,
    ...extra,
  };
}
