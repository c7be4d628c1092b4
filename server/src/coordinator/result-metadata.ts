/**
 * A round's result read back from its stored adapter: the coordinator writes
 * each client's merge weight (and who was left out) into the merged
 * adapter's safetensors metadata as well as into the journal's
 * `round-merged`. The journal is what the coordinator reads; this is for a
 * merge that stored its adapter just before a crash, and for rounds merged
 * before results were journaled.
 */
import { readSafetensorsLayout } from "@tributary/protocol";
import type { Federation, RoundRecord, RoundResult } from "../core/model.ts";
import type { AdapterHandle, StoredAdapter } from "../core/store.ts";
import { RESULT_METADATA } from "./round-merge.ts";

/** Reads a stored result adapter's header metadata back into its `RoundResult`. */
export async function readResultMetadata(
  federation: Federation,
  round: RoundRecord,
  handle: Pick<AdapterHandle, "contentHash" | "size" | "open">,
): Promise<RoundResult> {
  const reader = await handle.open();
  try {
    const file = `round ${round.number} result of ${federation.id}`;
    const { metadata } = await readSafetensorsLayout((at, n) => reader.read(at, n), handle.size, file);
    return resultFromMetadata(federation, round, handle, metadata);
  } finally {
    await reader.close();
  }
}

/** Rebuilds a round's `RoundResult` from its stored adapter's metadata (after a restart). */
export function resultFromMetadata(
  federation: Federation,
  round: RoundRecord,
  stored: StoredAdapter,
  metadata: Readonly<Record<string, string>>,
): RoundResult {
  const parse = (key: string): unknown => {
    try {
      return JSON.parse(metadata[key] ?? "[]");
    } catch {
      return [];
    }
  };
  const clients = parse(RESULT_METADATA.clients);
  const weights = parse(RESULT_METADATA.weights);
  const excluded = parse(RESULT_METADATA.excluded);
  return {
    federationId: federation.id,
    round: round.number,
    contentHash: stored.contentHash,
    size: stored.size,
    method: federation.merge.method,
    clients: Array.isArray(clients) ? clients.map(String) : [],
    weights: Array.isArray(weights) ? weights.map(Number) : [],
    mergedAt: Number(metadata[RESULT_METADATA.mergedAt] ?? round.closedAt ?? 0),
    ...(Array.isArray(excluded) && excluded.length > 0
      ? {
          excluded: excluded.map((e: { clientId?: unknown; reason?: unknown }) => ({
            clientId: String(e.clientId),
            reason: String(e.reason),
          })),
        }
      : {}),
  };
}
