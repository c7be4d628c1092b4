/**
 * Helpers for the store tests (and the crash-test child): domain records,
 * deterministic safetensors updates, temp directories. Not part of the API.
 */
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ClientRecord, Federation, RoundRecord, UpdateRecord } from "../../core/model.ts";
import type { UploadKey } from "../../core/store.ts";
import { serializeSafetensors } from "../../peft/index.ts";

/** A federation with a small schema. */
export function federation(id = "fed-1"): Federation {
  return {
    id,
    name: `Federation ${id}`,
    schema: {
      baseModel: "tiny/base",
      modules: [{ name: "model.layers.0.self_attn.q_proj", dIn: 16, dOut: 8, maxRank: 4 }],
      dtypes: ["F32", "F16", "BF16"],
    },
    merge: { method: "from", rank: 4 },
    policy: {
      minClients: 2,
      quorum: 2,
      waitAfterQuorumMs: 0,
      deadlineMs: 60_000,
      onDeadline: "fail",
      maxUpdateBytes: 1 << 30,
    },
    createdAt: 1_700_000_000_000,
  };
}

/** An enrolled client. */
export function client(clientId: string, federationId = "fed-1"): ClientRecord {
  return { federationId, clientId, tokenSha256: "0".repeat(64), enrolledAt: 1_700_000_000_001 };
}

/** An open round. */
export function round(number: number, federationId = "fed-1", extra: Partial<RoundRecord> = {}): RoundRecord {
  return {
    federationId,
    number,
    state: "open",
    openedAt: 1_700_000_000_002,
    deadlineAt: 1_700_000_060_002,
    extended: false,
    cohort: [],
    ...extra,
  };
}

/** Lower-case hex sha256. */
export function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Deterministic values from `seed` (a small LCG; exact in F32). */
function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = (seed * 2654435761) >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s >>> 8) / (1 << 24) - 0.5;
  }
  return out;
}

/** A LoRA module's tensor names. */
export const A_NAME = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight";
/** See `A_NAME`. */
export const B_NAME = "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight";

/** A real safetensors update (rank `rank`, `dIn` × `dOut`) whose values depend on `seed`. */
export function updateBytes(seed: number, rank = 4, dIn = 16, dOut = 8): Uint8Array {
  return serializeSafetensors(
    [
      { name: A_NAME, dtype: "F32", shape: [rank, dIn], data: values(rank * dIn, seed) },
      { name: B_NAME, dtype: "F16", shape: [dOut, rank], data: values(dOut * rank, seed + 1) },
    ],
    { format: "pt", seed: String(seed) },
  );
}

/** Shape of the crash test's updates (≈ 96 KiB each). */
export const CRASH_UPDATE_SHAPE = { rank: 32, dIn: 512, dOut: 256 } as const;

/** The accepted-update record for `key` and `bytes`. */
export function updateRecord(key: UploadKey, bytes: Uint8Array): UpdateRecord {
  return {
    ...key,
    samples: 100,
    metrics: { loss: 0.5 },
    sha256: sha256(bytes),
    size: bytes.length,
    receivedAt: 1_700_000_000_003,
    configJson: JSON.stringify({
      peft_type: "LORA",
      r: 4,
      lora_alpha: 8,
      base_model_name_or_path: "tiny/base",
    }),
  };
}

/** A fresh temp directory and its remover. */
export async function tempDir(
  prefix = "tributary-store-",
): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}
