/**
 * Announcing merged rounds on NATS without losing any: rounds merged but not
 * yet announced (`published !== true`) are the outbox's pending list, read
 * from the scheduler state, so a round merged while NATS was down, or before
 * a crash, is announced as soon as NATS is reachable again.
 */
import { readSafetensorsLayout } from "@tributary/protocol";
import type { Log } from "../core/log.ts";
import type { Federation, RoundRecord, RoundResult } from "../core/model.ts";
import type { ResultPublisher } from "../core/publisher.ts";
import type { AdapterHandle, CoordinatorStore } from "../core/store.ts";
import { createPublishOutbox } from "./publish-outbox.ts";
import { resultFromMetadata } from "./round-merge.ts";

/** The running outbox. */
export interface ResultPublishing {
  /** A round was just merged: try now instead of at the next retry. */
  kick(): void;
  close(): Promise<void>;
}

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

/** Starts the outbox over the coordinator's unannounced rounds. */
export function createResultPublishing(opts: {
  publisher: ResultPublisher;
  store: CoordinatorStore;
  log: Log;
  retryMs?: number;
  unannounced: () => { federation: Federation; round: RoundRecord }[];
  result: (federationId: string, round: number) => Promise<RoundResult | undefined>;
  onPublished: (result: RoundResult) => Promise<void>;
}): ResultPublishing {
  return createPublishOutbox({
    publisher: opts.publisher,
    log: opts.log,
    ...(opts.retryMs !== undefined ? { retryMs: opts.retryMs } : {}),
    onPublished: opts.onPublished,
    pending: async () => {
      const out = [];
      for (const { federation, round } of opts.unannounced()) {
        const result = await opts.result(federation.id, round.number);
        const handle = await opts.store.adapterForRound(federation.id, round.number);
        if (result === undefined || handle === undefined) {
          opts.log.error("merged round has no stored adapter", {
            federation: federation.id,
            round: round.number,
          });
          continue;
        }
        out.push({
          result,
          load: async () => {
            const reader = await handle.open();
            try {
              return { configJson: handle.configJson, safetensors: await reader.read(0, handle.size) };
            } finally {
              await reader.close();
            }
          },
        });
      }
      return out;
    },
  });
}
