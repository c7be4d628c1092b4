/** Test fixtures of the NATS edge: round results with random adapters. */
import { randomBytes } from "node:crypto";
import { type ResultAdapter, sha256Hex } from "@tributary/protocol";
import type { RoundResult } from "../../../core/model.ts";

/** A result and its adapter. */
export interface ResultFixture {
  readonly result: RoundResult;
  readonly adapter: ResultAdapter;
}

/**
 * A round result whose adapter is `bytes` random bytes (default 64 KiB).
 *
 * @example
 * const { result, adapter } = makeResultFixture("fed-1", 1, 5 * 1024 * 1024);
 */
export function makeResultFixture(federationId: string, round: number, bytes = 64 * 1024): ResultFixture {
  const safetensors = new Uint8Array(randomBytes(bytes));
  const configJson = JSON.stringify({ peft_type: "LORA", r: 8, lora_alpha: 16, round });
  return {
    adapter: { configJson, safetensors },
    result: {
      federationId,
      round,
      contentHash: sha256Hex(safetensors),
      size: safetensors.byteLength,
      method: "fedavg",
      clients: ["c1", "c2"],
      weights: [0.5, 0.5],
      mergedAt: Date.now(),
    },
  };
}
