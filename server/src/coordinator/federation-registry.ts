/**
 * The federations a coordinator runs, each with its round scheduler, built
 * from the journal's state (at start) or from a `federation-created` event,
 * and resumed where the journal left it.
 */
import type { Clock } from "../core/clock.ts";
import type { Log } from "../core/log.ts";
import type { Federation, RoundRecord } from "../core/model.ts";
import type { FederationEntry } from "../core/store.ts";
import type { Telemetry } from "../core/telemetry.ts";
import { UnknownFederationError } from "./errors.ts";
import type { RoundFlow } from "./round-flow.ts";
import { createRoundScheduler, type RoundScheduler } from "./round-scheduler.ts";

/** Federations by id, with their schedulers. */
export interface FederationRegistry {
  /** Builds `federation`'s scheduler from its journaled `entry` (none for a new one) and resumes it. */
  add(federation: Federation, entry?: FederationEntry): Promise<void>;
  has(id: string): boolean;
  /** The federation, or `UnknownFederationError`. */
  federation(id: string): Federation;
  /** Its scheduler, or `UnknownFederationError`. */
  scheduler(id: string): RoundScheduler;
  federations(): Federation[];
  schedulers(): [string, RoundScheduler][];
}

/** What the registry builds schedulers with. */
export interface RegistryDeps {
  readonly flow: RoundFlow;
  readonly clock: Clock;
  readonly log: Log;
  readonly telemetry: Telemetry;
  /** A round the journal left MERGING: merge it again. */
  readonly resumeMerge: (round: RoundRecord) => void;
}

/** An empty registry. */
export function createFederationRegistry(deps: RegistryDeps): FederationRegistry {
  const feds = new Map<string, Federation>();
  const schedulers = new Map<string, RoundScheduler>();
  const get = <T>(map: Map<string, T>, id: string): T => {
    const found = map.get(id);
    if (found === undefined) throw new UnknownFederationError(id);
    return found;
  };
  return {
    async add(federation, entry) {
      const rounds = [...(entry?.rounds.values() ?? [])];
      const scheduler = createRoundScheduler({
        federation,
        clock: deps.clock,
        initial: {
          rounds: rounds.map((r) => r.record),
          updates: rounds.flatMap((r) => [...r.updates.values()]),
          enrolled: entry?.clients.keys() ?? [],
        },
        effects: {
          journal: async (event) => void (await deps.flow.journal(event)),
          reportError: (err) =>
            deps.log.error("round scheduling error", { federation: federation.id, error: err }),
        },
      });
      feds.set(federation.id, federation);
      schedulers.set(federation.id, scheduler);
      const running = scheduler.current();
      if (running?.state === "open" || running?.state === "merging") {
        deps.telemetry.roundResumed(running, federation.merge.method);
      }
      await scheduler.recover();
      if (running?.state === "merging") deps.resumeMerge(running);
    },
    has: (id) => feds.has(id),
    federation: (id) => get(feds, id),
    scheduler: (id) => get(schedulers, id),
    federations: () => [...feds.values()],
    schedulers: () => [...schedulers],
  };
}
