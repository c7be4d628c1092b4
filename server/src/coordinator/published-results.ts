/**
 * Merged rounds and their results, as the journal records them: a round's
 * `RoundResult` (from its `round-merged` event, or read back from its stored
 * adapter for rounds merged before results were journaled), the published
 * adapter a client asks for, and the announcer that publishes every merged,
 * unannounced round on NATS, retrying while NATS is down (`publish-outbox.ts`).
 */
import { adapterForRank } from "@tributary/protocol";
import type { Log } from "../core/log.ts";
import type { Federation, RoundRecord, RoundResult } from "../core/model.ts";
import type { ResultPublisher } from "../core/publisher.ts";
import { type AdapterHandle, type CoordinatorStore, type JournalEvent, roundEntry } from "../core/store.ts";
import { UnknownRankVariantError, UnknownRoundError } from "./errors.ts";
import { createPublishOutbox, type PublishOutbox } from "./publish-outbox.ts";
import { readResultMetadata } from "./result-metadata.ts";

/** Which published round a client asks for: by number, by content hash, or the latest; and at which rank. */
export interface AdapterSelector {
  readonly round?: number;
  readonly hash?: string;
  /** The caller's rank: the round's rank variant of it (0 or absent: the merged adapter). Not with `hash`. */
  readonly rank?: number;
}

/** Results of merged rounds (see the module comment). */
export interface PublishedResults {
  /** Round `n`'s result, once merged. */
  result(federationId: string, n: number): Promise<RoundResult | undefined>;
  /** The published adapter `sel` names (`UnknownRoundError` when there is none). */
  adapter(federationId: string, sel: AdapterSelector): Promise<{ handle: AdapterHandle; round: number }>;
  /**
   * Announces merged, unannounced rounds on `publisher` from now on — of the
   * federations `mine` accepts (the ones this coordinator leads; default all);
   * returns the announcer.
   */
  announce(
    publisher: ResultPublisher,
    onPublished: (r: RoundResult) => Promise<void>,
    retryMs?: number,
    mine?: (federationId: string) => boolean,
  ): PublishOutbox;
  /** Reacts to a journaled event (`round-merged` wakes the announcer). */
  onEvent(event: JournalEvent): void;
}

/** A stored adapter's config and bytes, whole. */
async function loadWhole(handle: AdapterHandle): Promise<{ configJson: string; safetensors: Uint8Array }> {
  const reader = await handle.open();
  try {
    return { configJson: handle.configJson, safetensors: await reader.read(0, handle.size) };
  } finally {
    await reader.close();
  }
}

/** Results over the journal's state in `store`. */
export function createPublishedResults(
  store: CoordinatorStore,
  log: Log,
  federation: (id: string) => Federation,
): PublishedResults {
  const legacy = new Map<string, RoundResult>();
  let outbox: PublishOutbox | undefined;

  const result = async (federationId: string, n: number): Promise<RoundResult | undefined> => {
    const entry = roundEntry(store.state(), federationId, n);
    if (entry?.result !== undefined) return entry.result;
    if (entry?.record.resultHash === undefined) return undefined;
    const key = `${federationId}\u0000${n}`;
    const cached = legacy.get(key);
    if (cached !== undefined) return cached;
    const handle = await store.adapterForRound(federationId, n);
    if (handle === undefined) return undefined;
    const rebuilt = await readResultMetadata(federation(federationId), entry.record, handle);
    legacy.set(key, rebuilt);
    return rebuilt;
  };

  const unannounced = (): RoundRecord[] =>
    [...store.state().federations.values()].flatMap((f) =>
      [...f.rounds.values()]
        .map((r) => r.record)
        .filter((r) => r.state === "published" && r.published !== true),
    );

  return {
    result,
    async adapter(federationId, sel) {
      const rounds = [...(store.state().federations.get(federationId)?.rounds.values() ?? [])]
        .map((r) => r.record)
        .filter((r) => r.state === "published");
      const pick =
        sel.round !== undefined
          ? rounds.find((r) => r.number === sel.round)
          : sel.hash !== undefined
            ? rounds.find(
                (r) =>
                  r.resultHash === sel.hash ||
                  roundEntry(store.state(), federationId, r.number)?.result?.rankVariants?.some(
                    (v) => v.contentHash === sel.hash,
                  ),
              )
            : rounds.at(-1);
      if (pick?.resultHash === undefined) throw new UnknownRoundError(federationId, sel.round ?? 0);
      let hash = sel.hash ?? pick.resultHash;
      if (sel.hash === undefined && sel.rank !== undefined && sel.rank > 0) {
        const r = await result(federationId, pick.number);
        const chosen = r === undefined ? { contentHash: pick.resultHash } : adapterForRank(r, sel.rank);
        if (chosen === undefined) {
          throw new UnknownRankVariantError(
            federationId,
            pick.number,
            sel.rank,
            (r?.rankVariants ?? []).map((v) => v.rank),
          );
        }
        hash = chosen.contentHash;
      }
      const handle = await store.getAdapter(hash);
      if (handle === undefined) throw new UnknownRoundError(federationId, pick.number);
      return { handle, round: pick.number };
    },
    announce(publisher, onPublished, retryMs, mine = () => true) {
      outbox = createPublishOutbox({
        publisher,
        log,
        ...(retryMs !== undefined ? { retryMs } : {}),
        onPublished,
        pending: async () => {
          const out = [];
          for (const round of unannounced()) {
            // Only the leader announces a federation's rounds.
            if (!mine(round.federationId)) continue;
            const r = await result(round.federationId, round.number);
            const handle = await store.adapterForRound(round.federationId, round.number);
            if (r === undefined || handle === undefined) {
              log.error("merged round has no stored adapter", {
                federation: round.federationId,
                round: round.number,
              });
              continue;
            }
            out.push({
              result: r,
              load: async () => {
                const variants = [];
                for (const v of r.rankVariants ?? []) {
                  const h = await store.getAdapter(v.contentHash);
                  if (h === undefined) {
                    throw new Error(
                      `round ${r.round} of ${r.federationId}: its rank ${v.rank} variant ${v.contentHash} is not stored`,
                    );
                  }
                  variants.push(await loadWhole(h));
                }
                return { ...(await loadWhole(handle)), ...(variants.length > 0 ? { variants } : {}) };
              },
            });
          }
          return out;
        },
      });
      return outbox;
    },
    onEvent(event) {
      if (event.type === "round-merged") outbox?.kick();
    },
  };
}
