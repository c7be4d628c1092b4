/**
 * Announcing merged rounds on NATS without losing any: rounds merged but not
 * yet announced (`published !== true`) are the outbox's pending list, read
 * from the scheduler state, so a round merged while NATS was down, or before
 * a crash, is announced as soon as NATS is reachable again.
 */
import type { AdapterHandle, CoordinatorStore } from "../store/store.ts";
import type { Log } from "../telemetry/log.ts";
import { createPublishOutbox } from "../transport/nats/publish-outbox.ts";
import type { ResultPublisher } from "../transport/nats/publisher.ts";
import type { Federation, RoundRecord, RoundResult } from "./model.ts";
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
    // The coordinator wrote this file itself: only its `__metadata__` is needed.
    const len = Number(new DataView((await reader.read(0, 8)).slice().buffer).getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(await reader.read(8, len))) as {
      __metadata__?: Record<string, string>;
    };
    return resultFromMetadata(federation, round, handle, header.__metadata__ ?? {});
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
