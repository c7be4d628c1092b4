/**
 * `tributary.v1.OperatorService` on grpc-js, behind the operator token (a
 * credential separate from every client's). Enrollment hands out a client
 * token exactly once; only its digest is stored.
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type * as grpc from "@grpc/grpc-js";
import {
  AbortRoundResponseSchema,
  CloseRoundResponseSchema,
  CreateFederationResponseSchema,
  EnrollClientResponseSchema,
  GetStatusResponseSchema,
  type GrpcServiceImplementation,
  ListRoundsResponseSchema,
  ListUpdatesResponseSchema,
  type OperatorService,
  type PrivacyStatus,
  PrivacyStatusSchema,
  RetryMergeResponseSchema,
  StartRoundResponseSchema,
} from "@tributary/protocol";
import type { Coordinator } from "../../coordinator/coordinator.ts";
import type { Log } from "../../core/log.ts";
import type { RoundRecord } from "../../core/model.ts";
import { newToken, tokenDigest } from "../../core/tokens.ts";
import { authenticateOperator } from "./auth.ts";
import type { ConnectionTracker } from "./connections.ts";
import { federationFromProto, federationToProto, roundToProto, updateToProto } from "./convert.ts";
import { toServiceError } from "./status.ts";

/** Dependencies of the operator service. */
export interface OperatorServiceDeps {
  readonly coordinator: Coordinator;
  /** Hex sha256 of the operator token. */
  readonly operatorDigest: string;
  readonly connections: ConnectionTracker;
  readonly log: Log;
}

const DEFAULT_PAGE = 100;

/** Builds the handlers. */
export function operatorServiceHandlers(
  deps: OperatorServiceDeps,
): GrpcServiceImplementation<typeof OperatorService> {
  const { coordinator, operatorDigest, connections, log } = deps;
  /** Runs an authenticated unary handler. */
  const unary =
    <Req, Res>(fn: (req: Req) => Promise<Res>) =>
    (call: grpc.ServerUnaryCall<Req, Res>, callback: grpc.sendUnaryData<Res>) => {
      (async () => {
        authenticateOperator(call.metadata, operatorDigest);
        return fn(call.request);
      })().then(
        (res) => callback(null, res),
        (err: unknown) => callback(toServiceError(err) as grpc.ServiceError),
      );
    };
  const withCount = (r: RoundRecord) => roundToProto(r, coordinator.updates(r.federationId, r.number).length);

  return {
    createFederation: unary(async (req) => {
      const f = await coordinator.createFederation(federationFromProto(req));
      return create(CreateFederationResponseSchema, { federation: federationToProto(f) });
    }),
    enrollClient: unary(async (req) => {
      const token = newToken();
      await coordinator.enrollClient(req.federationId, req.clientId, tokenDigest(token), {
        rotate: req.rotate,
      });
      log.info("client token issued", { federation: req.federationId, client: req.clientId });
      return create(EnrollClientResponseSchema, { clientId: req.clientId, token });
    }),
    startRound: unary(async (req) => {
      const r = await coordinator.startRound(req.federationId);
      return create(StartRoundResponseSchema, { round: withCount(r) });
    }),
    closeRound: unary(async (req) => {
      const r = await coordinator.closeRound(req.federationId, req.round || undefined);
      return create(CloseRoundResponseSchema, { round: withCount(r) });
    }),
    abortRound: unary(async (req) => {
      const r = await coordinator.abortRound(
        req.federationId,
        req.reason || "aborted by the operator",
        req.round || undefined,
      );
      return create(AbortRoundResponseSchema, { round: withCount(r) });
    }),
    retryMerge: unary(async (req) => {
      const r = await coordinator.retryMerge(req.federationId, req.round);
      return create(RetryMergeResponseSchema, { round: withCount(r) });
    }),
    listRounds: unary(async (req) => {
      // Newest first, as operator.proto documents.
      const all = [...coordinator.rounds(req.federationId)].reverse();
      const start = req.pageToken === "" ? 0 : Number.parseInt(req.pageToken, 10) || 0;
      const size = req.pageSize || DEFAULT_PAGE;
      const page = all.slice(start, start + size);
      return create(ListRoundsResponseSchema, {
        rounds: page.map(({ round, accepted }) => roundToProto(round, accepted)),
        nextPageToken: start + size < all.length ? String(start + size) : "",
      });
    }),
    listUpdates: unary(async (req) => {
      const updates = coordinator.updates(req.federationId, req.round);
      const result = await coordinator.result(req.federationId, req.round);
      const weightOf = (clientId: string) => {
        const i = result?.clients.indexOf(clientId) ?? -1;
        return i >= 0 ? (result?.weights[i] ?? 0) : 0;
      };
      return create(ListUpdatesResponseSchema, {
        updates: updates.map((u) =>
          updateToProto(
            u,
            weightOf(u.clientId),
            result?.excluded?.find((e) => e.clientId === u.clientId)?.reason ?? "",
          ),
        ),
      });
    }),
    getStatus: unary(async () => {
      const federations = coordinator.federations();
      const open = federations
        .map((f) => coordinator.current(f.id))
        .filter((r): r is RoundRecord => r !== undefined && (r.state === "open" || r.state === "merging"));
      const cluster = coordinator.cluster();
      const waitingReasons: Record<string, string> = {};
      const privacy: Record<string, PrivacyStatus> = {};
      for (const f of federations) {
        const why = coordinator.whyNoRound(f.id);
        if (why !== undefined) waitingReasons[f.id] = why;
        const p = coordinator.privacy(f.id);
        if (p !== undefined) privacy[f.id] = create(PrivacyStatusSchema, p);
      }
      return create(GetStatusResponseSchema, {
        federations: federations.map(federationToProto),
        openRounds: open.map(withCount),
        waitingReasons,
        privacy,
        connectedClients: [
          ...connections
            .list()
            .filter((c) => c.live)
            .map((c) => ({
              clientId: c.clientId,
              federationId: c.federationId,
              joinTime: timestampFromMs(c.joinedAt),
              lastSeenTime: timestampFromMs(c.lastSeenAt),
            })),
          ...cluster.remoteClients.map((c) => ({
            clientId: c.clientId,
            federationId: c.federationId,
            joinTime: timestampFromMs(c.joinedAt),
            lastSeenTime: timestampFromMs(c.lastSeenAt),
            coordinatorId: c.coordinatorId,
          })),
        ],
        leaders: cluster.leaders.map((l) => ({
          federationId: l.federationId,
          coordinatorId: l.coordinatorId,
          term: BigInt(l.term),
          address: l.address ?? "",
        })),
        coordinators: cluster.coordinators.map((c) => ({
          coordinatorId: c.coordinatorId,
          address: c.address ?? "",
          lastSeenTime: timestampFromMs(c.seenAt),
        })),
        coordinatorId: cluster.coordinatorId ?? "",
        mergeWorkers: cluster.workers.map((w) => ({
          workerId: w.id,
          threads: w.threads,
          backend: w.backend,
          host: w.host,
        })),
      });
    }),
  };
}
