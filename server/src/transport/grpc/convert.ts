/**
 * Conversions between protobuf messages (`@tributary/proto`) and the
 * coordinator's domain records. Validation of values happens in the
 * coordinator; this only translates shapes, units and enums.
 */
import { create } from "@bufbuild/protobuf";
import { durationFromMs, durationMs, timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  type CreateFederationRequest,
  DeadlinePolicy,
  Dtype,
  type Federation as FederationMessage,
  FederationSchema,
  type Round,
  RoundSchema,
  RoundState,
  type UpdateSummary,
  UpdateSummarySchema,
} from "@tributary/protocol";
import type {
  RoundState as DomainRoundState,
  Federation,
  MergeSpec,
  RoundPolicy,
  RoundRecord,
  UpdateRecord,
} from "../../core/model.ts";
import type { MethodName } from "../../merge/options.ts";
import type { TensorDType } from "../../peft/dtype.ts";

/** Default update size limit when a federation sets none (2 GiB). */
export const DEFAULT_MAX_UPDATE_BYTES = 2 * 1024 ** 3;

const DTYPES: Record<Dtype, TensorDType | undefined> = {
  [Dtype.UNSPECIFIED]: undefined,
  [Dtype.F32]: "F32",
  [Dtype.F16]: "F16",
  [Dtype.BF16]: "BF16",
};

/** Proto dtype → PEFT dtype (`undefined` for UNSPECIFIED). */
export function dtypeFromProto(d: Dtype): TensorDType | undefined {
  return DTYPES[d];
}

/** PEFT dtype → proto dtype. */
export function dtypeToProto(d: TensorDType): Dtype {
  return d === "F32" ? Dtype.F32 : d === "F16" ? Dtype.F16 : Dtype.BF16;
}

const STATES: Record<DomainRoundState, RoundState> = {
  open: RoundState.OPEN,
  merging: RoundState.MERGING,
  published: RoundState.PUBLISHED,
  failed: RoundState.FAILED,
  aborted: RoundState.ABORTED,
};

function mergeFromProto(m: CreateFederationRequest["merge"]): MergeSpec {
  if (m === undefined) return { method: "from" };
  const optional = <K extends string, V>(k: K, v: V | undefined) => (v === undefined ? {} : { [k]: v });
  return {
    method: (m.method || "from") as MethodName,
    ...(m.fullRank ? { rank: "full" as const } : m.rank > 0 ? { rank: m.rank } : {}),
    ...optional("k", m.k),
    ...optional("scale", m.scale),
    ...optional("solver", m.solver as MergeSpec["solver"]),
    ...optional("sigma", m.sigma),
    ...optional("iters", m.iters),
    ...optional("tol", m.tol),
    ...optional("seed", m.seed),
    ...optional("mu", m.mu),
    ...optional("rankCap", m.rankCap),
    ...optional("cutoff", m.cutoff),
    ...optional("combine", m.combine as MergeSpec["combine"]),
    ...optional("density", m.density),
    ...optional("drop", m.drop),
    ...optional("normBound", m.normBound),
    ...optional("normBoundMedian", m.normBoundMedianMultiple),
    ...optional("normBoundAction", m.normBoundAction as MergeSpec["normBoundAction"]),
  };
}

function policyFromProto(p: CreateFederationRequest["policy"]): RoundPolicy {
  const ms = (d: Parameters<typeof durationMs>[0] | undefined, fallback: number) =>
    d === undefined ? fallback : durationMs(d);
  return {
    minClients: p?.minClients || 1,
    ...(p?.cohortSize ? { cohortSize: p.cohortSize } : {}),
    ...(p?.cohortFraction ? { cohortFraction: p.cohortFraction } : {}),
    quorum: p?.quorum || 1,
    waitAfterQuorumMs: ms(p?.waitAfterQuorum, 0),
    deadlineMs: ms(p?.deadline, 10 * 60_000),
    onDeadline: p?.deadlinePolicy === DeadlinePolicy.FAIL_ROUND ? "fail" : "extend-once",
    maxUpdateBytes: p?.maxUpdateBytes ? Number(p.maxUpdateBytes) : DEFAULT_MAX_UPDATE_BYTES,
  };
}

/** A `CreateFederation` request as a domain federation (validated by the coordinator). */
export function federationFromProto(req: CreateFederationRequest): Omit<Federation, "createdAt"> {
  const schema = req.schema;
  return {
    id: req.federationId,
    name: req.displayName || req.federationId,
    schema: {
      baseModel: schema?.baseModelId ?? "",
      modules: (schema?.modules ?? []).map((m) => ({
        name: m.name,
        dIn: m.dIn,
        dOut: m.dOut,
        maxRank: m.maxRank,
      })),
      // Empty = any of F32, F16, BF16, as federation.proto documents.
      dtypes:
        (schema?.allowedDtypes ?? []).length === 0
          ? ["F32", "F16", "BF16"]
          : (schema?.allowedDtypes ?? [])
              .map(dtypeFromProto)
              .filter((d): d is TensorDType => d !== undefined),
    },
    merge: mergeFromProto(req.merge),
    policy: policyFromProto(req.policy),
  };
}

/** A domain federation as its protobuf message. */
export function federationToProto(f: Federation): FederationMessage {
  const m = f.merge;
  return create(FederationSchema, {
    id: f.id,
    displayName: f.name,
    schema: {
      baseModelId: f.schema.baseModel,
      modules: f.schema.modules.map((x) => ({ name: x.name, dIn: x.dIn, dOut: x.dOut, maxRank: x.maxRank })),
      allowedDtypes: f.schema.dtypes.map(dtypeToProto),
    },
    merge: {
      method: m.method,
      rank: typeof m.rank === "number" ? m.rank : 0,
      fullRank: m.rank === "full",
      k: m.k,
      scale: m.scale,
      solver: m.solver,
      sigma: m.sigma,
      iters: m.iters,
      tol: m.tol,
      seed: m.seed,
      mu: m.mu,
      rankCap: m.rankCap,
      cutoff: m.cutoff,
      combine: m.combine,
      density: m.density,
      drop: m.drop,
      normBound: m.normBound,
      normBoundMedianMultiple: m.normBoundMedian,
      normBoundAction: m.normBoundAction,
    },
    policy: {
      minClients: f.policy.minClients,
      cohortSize: f.policy.cohortSize ?? 0,
      cohortFraction: f.policy.cohortFraction ?? 0,
      quorum: f.policy.quorum,
      waitAfterQuorum: durationFromMs(f.policy.waitAfterQuorumMs),
      deadline: durationFromMs(f.policy.deadlineMs),
      deadlinePolicy: f.policy.onDeadline === "fail" ? DeadlinePolicy.FAIL_ROUND : DeadlinePolicy.EXTEND_ONCE,
      maxUpdateBytes: BigInt(f.policy.maxUpdateBytes),
    },
    createTime: timestampFromMs(f.createdAt),
  });
}

/** A round record as its protobuf message. */
export function roundToProto(r: RoundRecord, acceptedUpdates: number): Round {
  return create(RoundSchema, {
    federationId: r.federationId,
    number: r.number,
    state: STATES[r.state],
    openTime: timestampFromMs(r.openedAt),
    ...(r.closedAt !== undefined ? { closeTime: timestampFromMs(r.closedAt) } : {}),
    deadlineTime: timestampFromMs(r.deadlineAt),
    acceptedUpdates,
    cohortClientIds: [...r.cohort],
    resultContentHash: r.resultHash ?? "",
    failureReason: r.failure ?? "",
  });
}

/** An accepted update as operators see it. */
export function updateToProto(u: UpdateRecord, weight: number, exclusion = ""): UpdateSummary {
  return create(UpdateSummarySchema, {
    federationId: u.federationId,
    clientId: u.clientId,
    updateId: u.updateId,
    round: u.round,
    sampleCount: BigInt(u.samples),
    sizeBytes: BigInt(u.size),
    contentHash: u.sha256,
    receiveTime: timestampFromMs(u.receivedAt),
    mergeWeight: weight,
    mergeExclusion: exclusion,
  });
}
