/**
 * Telling people what happened to rounds: watchers (`WatchRounds` streams,
 * the SDKs' progress) get the round and its accepted-update count after every
 * round event and every accepted update; telemetry ends and annotates round
 * spans; a round that stopped taking updates has its partial uploads deleted.
 * All of it reacts to journaled events (`round-flow.ts`), with counts from
 * the replayed state.
 */
import type { Log } from "../core/log.ts";
import type { Federation, RoundRecord } from "../core/model.ts";
import { type CoordinatorStore, type JournalEvent, roundEntry } from "../core/store.ts";
import type { Telemetry } from "../core/telemetry.ts";

/** A round change delivered to watchers. */
export interface RoundEvent {
  readonly round: RoundRecord;
  readonly acceptedUpdates: number;
}

/** Watchers of rounds, per federation. */
export interface RoundWatch {
  /** Reacts to a journaled event. */
  onEvent(event: JournalEvent): void;
  /** Adds a watcher of federation `federationId`'s rounds; returns its removal. */
  watch(federationId: string, listener: (e: RoundEvent) => void): () => void;
}

/** What `createRoundWatch` needs. */
export interface RoundWatchOptions {
  readonly store: CoordinatorStore;
  readonly log: Log;
  readonly telemetry: Telemetry;
  readonly federation: (id: string) => Federation;
}

/** The round watch (see the module comment). */
export function createRoundWatch(opts: RoundWatchOptions): RoundWatch {
  const { store, log, telemetry } = opts;
  const watchers = new Map<string, Set<(e: RoundEvent) => void>>();
  /** Tells the watchers of `round` with its count of `accepted` updates. */
  const tell = (round: RoundRecord, accepted: number): void => {
    for (const listener of watchers.get(round.federationId) ?? []) {
      try {
        listener({ round, acceptedUpdates: accepted });
      } catch (err) {
        log.warn("a round watcher failed", { federation: round.federationId, error: err });
      }
    }
  };

  /** Watchers and telemetry after any change of `round` (its state or its count). */
  const changed = (round: RoundRecord): number => {
    const got = roundEntry(store.state(), round.federationId, round.number)?.updates ?? new Map();
    const accepted = got.size;
    tell(round, accepted);
    telemetry.roundChanged({
      round,
      method: opts.federation(round.federationId).merge.method,
      accepted,
      ...(round.state === "merging" ? { stragglers: round.cohort.filter((id) => !got.has(id)).length } : {}),
    });
    return accepted;
  };

  const roundChanged = (event: JournalEvent & { round: RoundRecord }): void => {
    const { round } = event;
    if (event.type === "round-published") return; // announced on NATS: the round itself did not change
    const accepted = changed(round);
    if (round.state !== "open") {
      log.info(`round ${round.state}`, {
        federation: round.federationId,
        round: round.number,
        acceptedUpdates: accepted,
      });
    }
    if (event.type === "round-closed" || event.type === "round-failed" || event.type === "round-aborted") {
      // Uploads still running for a closed round can never count: stop them and free the disk.
      store.discardRoundUploads(round.federationId, round.number).catch((err: unknown) => {
        log.warn("could not discard a closed round's partial uploads", {
          federation: round.federationId,
          round: round.number,
          error: err,
        });
      });
    }
  };

  return {
    onEvent(event) {
      if (event.type === "update-accepted") {
        const round = roundEntry(store.state(), event.update.federationId, event.update.round)?.record;
        if (round !== undefined) changed(round);
      } else if ("round" in event) roundChanged(event);
    },
    watch(federationId, listener) {
      let set = watchers.get(federationId);
      if (set === undefined) {
        set = new Set();
        watchers.set(federationId, set);
      }
      set.add(listener);
      return () => set.delete(listener);
    },
  };
}
