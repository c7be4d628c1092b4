/**
 * Which coordinator leads each federation, when several run on one
 * replicated store: the leader runs the federation's scheduler and merges;
 * the others serve every RPC from the shared state. Leadership is a lease the
 * leader renews; a coordinator that cannot renew it stops acting as leader
 * before anyone else can take it, and the new leader journals
 * `leader-elected` with a higher term, which fences the old one's late
 * writes (see `Fenced` in `store.ts`). With one coordinator
 * (`soleLeadership`) it always leads, and nothing is journaled.
 */

/** A lease holder as last seen. */
export interface LeaseHolder {
  readonly coordinatorId: string;
  /** The lease's term (grows with each election). */
  readonly term: number;
  /** Where the holder serves gRPC (`host:port`), if it said. */
  readonly address?: string;
}

/** What a campaign calls back. */
export interface CampaignHandlers {
  /** This coordinator won the lease for `term`: it leads from now until `deposed`. */
  elected(term: number): void;
  /** It lost the lease (or could not renew it in time): it must stop acting as leader now. */
  deposed(): void;
}

/** Leader election for federations. */
export interface Leadership {
  /** This coordinator's id. */
  readonly coordinatorId: string;
  /** Whether several coordinators may run (and `leader-elected` events are journaled). */
  readonly replicated: boolean;
  /** How long a lease lasts without renewal, in ms (the bound on fail-over). */
  readonly leaseMs: number;
  /** Campaigns for `federationId` until `close`; one campaign per federation. */
  campaign(federationId: string, handlers: CampaignHandlers): void;
  /** The holder of each federation's lease, as last seen (leases of other coordinators included). */
  holders(): ReadonlyMap<string, LeaseHolder>;
  /** Coordinators seen alive, by id, with their addresses (this one included). */
  coordinators(): ReadonlyMap<string, { readonly address?: string; readonly seenAt: number }>;
  /** Stops campaigning and gives up held leases (so another coordinator takes over at once). */
  close(): Promise<void>;
}

/**
 * The leadership of a coordinator alone on its store: it leads every
 * federation from the start, in term 0 (nothing is journaled).
 *
 * @example
 * const leadership = soleLeadership("coordinator-1");
 */
export function soleLeadership(coordinatorId: string, address?: string): Leadership {
  const held = new Map<string, LeaseHolder>();
  const started = Date.now();
  return {
    coordinatorId,
    replicated: false,
    leaseMs: 0,
    campaign(federationId, handlers) {
      held.set(federationId, { coordinatorId, term: 0, ...(address !== undefined ? { address } : {}) });
      handlers.elected(0);
    },
    holders: () => held,
    coordinators: () =>
      new Map([[coordinatorId, { ...(address !== undefined ? { address } : {}), seenAt: started }]]),
    close: async () => undefined,
  };
}
