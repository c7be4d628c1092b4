/**
 * An in-memory `CoordinatorReader` for the operator page's unit tests: one
 * federation (`fed-1`, quorum 2) with three clients and two rounds — round 1
 * published (client-3 a straggler, client-2 after quorum, both reporting a
 * loss), round 2 open with client-3's update refused.
 */
import { UnknownFederationError, UnknownRoundError } from "../../coordinator/errors.ts";
import { testFederation, updateRecord } from "../../coordinator/testing/fixtures.ts";
import type { RoundRecord, RoundResult, UpdateRecord } from "../../core/model.ts";
import type { CoordinatorReader } from "../views.ts";

/** Epoch ms round 1 opened at. */
export const T0 = 1_700_000_000_000;

/** The fake (see the module comment); `name` becomes the federation's display name. */
export function fakeReader(name = "test federation"): CoordinatorReader {
  const federation = { ...testFederation({ quorum: 2, waitAfterQuorumMs: 5000 }), name };
  const rounds: RoundRecord[] = [
    {
      federationId: "fed-1",
      number: 1,
      state: "published",
      openedAt: T0,
      deadlineAt: T0 + 60_000,
      extended: false,
      cohort: ["client-1", "client-2", "client-3"],
      quorumAt: T0 + 2000,
      closedAt: T0 + 7000,
      resultHash: "ab".repeat(32),
      published: true,
    },
    {
      federationId: "fed-1",
      number: 2,
      state: "open",
      openedAt: T0 + 8000,
      deadlineAt: T0 + 68_000,
      extended: false,
      cohort: ["client-1", "client-2", "client-3"],
    },
  ];
  const updates = new Map<number, UpdateRecord[]>([
    [
      1,
      [
        updateRecord("client-1", 1, {
          receivedAt: T0 + 2000,
          size: 2048,
          samples: 300,
          metrics: { loss: 0.5 },
        }),
        updateRecord("client-2", 1, {
          receivedAt: T0 + 4500,
          size: 4096,
          samples: 100,
          metrics: { loss: 0.9 },
        }),
      ],
    ],
    [2, [updateRecord("client-1", 2, { receivedAt: T0 + 9000, size: 2048, samples: 300 })]],
  ]);
  const result: RoundResult = {
    federationId: "fed-1",
    round: 1,
    contentHash: "ab".repeat(32),
    size: 5000,
    method: "fedavg",
    clients: ["client-1", "client-2"],
    weights: [0.75, 0.25],
    mergedAt: T0 + 7400,
  };
  const fed = (id: string) => {
    if (id !== "fed-1") throw new UnknownFederationError(id);
    return federation;
  };
  const round = (id: string, n: number) => {
    fed(id);
    const r = rounds.find((x) => x.number === n);
    if (r === undefined) throw new UnknownRoundError(id, n);
    return r;
  };
  return {
    cluster: () => ({ leaders: [], coordinators: [], remoteClients: [], workers: [] }),
    federations: () => [federation],
    federation: fed,
    rounds: (id) => {
      fed(id);
      return rounds.map((r) => ({ round: r, accepted: updates.get(r.number)?.length ?? 0 }));
    },
    updates: (id, n) => {
      round(id, n);
      return updates.get(n) ?? [];
    },
    result: async (id, n) => {
      round(id, n);
      return n === 1 ? result : undefined;
    },
    clients: (id) => {
      fed(id);
      return ["client-1", "client-2", "client-3"].map((clientId) => ({
        federationId: id,
        clientId,
        tokenSha256: "0".repeat(64),
        enrolledAt: T0 - 1000,
      }));
    },
    connected: (id) => {
      fed(id);
      return ["client-1", "client-2"];
    },
    stragglers: (id, n) => {
      const r = round(id, n);
      const got = new Set((updates.get(n) ?? []).map((u) => u.clientId));
      return r.cohort.filter((c) => !got.has(c));
    },
    current: (id) => {
      fed(id);
      return rounds[rounds.length - 1];
    },
    whyNoRound: (id) => {
      fed(id);
      return undefined;
    },
    privacy: (id) => {
      fed(id);
      return undefined;
    },
    refusals: (id) => {
      fed(id);
      return [
        {
          federationId: id,
          round: 2,
          clientId: "client-3",
          updateId: "u-3",
          at: T0 + 9500,
          reason: "INVALID_TENSOR",
          message: 'update from client "client-3": tensor "x" has value NaN at index 0',
        },
      ];
    },
    lastSeen: (id, clientId) => {
      fed(id);
      return clientId === "client-3" ? undefined : T0 + 9000;
    },
  };
}
