/**
 * Conversions between protobuf messages (`@tributary/proto`) and the
 * coordinator's domain records. Validation of values happens in the
 * coordinator; this only translates shapes, units and enums. A merge spec's
 * parameters map to `tributary.v1.MergeSpec` fields by the merge engine's
 * table (`merge/params.ts`).
 */
import { create } from "@bufbuild/protobuf";
import { durationFromMs, durationMs, timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { TensorDType } from "@tributary/protocol";
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
  BufferedRounds,
  RoundState as DomainRoundState,
  Federation,
  MergeSpec,
  RoundPolicy,
  RoundRecord,
  StalenessFunction,
  UpdateRecord,
} from "../../core/model.ts";
import { type MethodName, PARAM_KEYS, PARAMS } from "../../merge/options.ts";

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
  const fields = m as unknown as Record<string, unknown>;
  const params = PARAM_KEYS.flatMap((k) => {
    const value = fields[PARAMS[k].protoField];
    return value === undefined ? [] : [[k, value] as const];
  });
  return {
    method: (m.method || "from") as MethodName,
    ...(m.fullRank ? { rank: "full" as const } : m.rank > 0 ? { rank: m.rank } : {}),
    ...Object.fromEntries(params),
  };
}

/** A merge spec as the fields of `tributary.v1.MergeSpec`. */
function mergeToProto(m: MergeSpec): Record<string, unknown> {
  return {
    method: m.method,
    rank: typeof m.rank === "number" ? m.rank : 0,
    fullRank: m.rank === "full",
    ...Object.fromEntries(PARAM_KEYS.map((k) => [PARAMS[k].protoField, m[k]])),
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
    ...(p?.buffered !== undefined ? { buffered: bufferedFromProto(p.buffered) } : {}),
    ...(p?.foldIntoBase === true ? { foldIntoBase: true } : {}),
  };
}

/** `BufferedRounds` with its defaults (checked by the coordinator). */
function bufferedFromProto(
  b: NonNullable<NonNullable<CreateFederationRequest["policy"]>["buffered"]>,
): BufferedRounds {
  const a = b.stalenessA || 0.5;
  const kind = b.staleness || "polynomial";
  const staleness: StalenessFunction =
    kind === "constant"
      ? { kind }
      : kind === "hinge"
        ? { kind, a, b: b.stalenessB || 4 }
        : { kind: kind as "polynomial", a };
  return { size: b.size, staleness, serverLr: b.serverLr || 1, maxStaleness: b.maxStaleness || 10 };
}

function bufferedToProto(b: BufferedRounds): Record<string, unknown> {
  return {
    size: b.size,
    staleness: b.staleness.kind,
    stalenessA: b.staleness.kind === "constant" ? 0 : b.staleness.a,
    stalenessB: b.staleness.kind === "hinge" ? b.staleness.b : 0,
    serverLr: b.serverLr,
    maxStaleness: b.maxStaleness,
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
    ...(req.privacy !== undefined
      ? {
          privacy: {
            clipNorm: req.privacy.clipNorm,
            noiseMultiplier: req.privacy.noiseMultiplier,
            delta: req.privacy.delta,
            ...(req.privacy.epsilonBudget > 0 ? { epsilonBudget: req.privacy.epsilonBudget } : {}),
            reproducible: req.privacy.reproducible,
            ...(req.privacy.targetQuantile > 0
              ? {
                  adaptive: {
                    targetQuantile: req.privacy.targetQuantile,
                    clipLr: req.privacy.clipLr > 0 ? req.privacy.clipLr : 0.2,
                    clippedCountStddev:
                      req.privacy.clippedCountStddev > 0
                        ? req.privacy.clippedCountStddev
                        : Math.max(req.privacy.noiseMultiplier, (req.policy?.quorum ?? 1) / 20),
                  },
                }
              : {}),
          },
        }
      : {}),
  };
}

/** A domain federation as its protobuf message. */
export function federationToProto(f: Federation): FederationMessage {
  return create(FederationSchema, {
    id: f.id,
    displayName: f.name,
    schema: {
      baseModelId: f.schema.baseModel,
      modules: f.schema.modules.map((x) => ({ name: x.name, dIn: x.dIn, dOut: x.dOut, maxRank: x.maxRank })),
      allowedDtypes: f.schema.dtypes.map(dtypeToProto),
    },
    merge: mergeToProto(f.merge),
    policy: {
      minClients: f.policy.minClients,
      cohortSize: f.policy.cohortSize ?? 0,
      cohortFraction: f.policy.cohortFraction ?? 0,
      quorum: f.policy.quorum,
      waitAfterQuorum: durationFromMs(f.policy.waitAfterQuorumMs),
      deadline: durationFromMs(f.policy.deadlineMs),
      deadlinePolicy: f.policy.onDeadline === "fail" ? DeadlinePolicy.FAIL_ROUND : DeadlinePolicy.EXTEND_ONCE,
      maxUpdateBytes: BigInt(f.policy.maxUpdateBytes),
      ...(f.policy.buffered !== undefined ? { buffered: bufferedToProto(f.policy.buffered) } : {}),
      foldIntoBase: f.policy.foldIntoBase === true,
    },
    createTime: timestampFromMs(f.createdAt),
    ...(f.privacy !== undefined
      ? {
          privacy: {
            clipNorm: f.privacy.clipNorm,
            noiseMultiplier: f.privacy.noiseMultiplier,
            delta: f.privacy.delta,
            epsilonBudget: f.privacy.epsilonBudget ?? 0,
            reproducible: f.privacy.reproducible,
            targetQuantile: f.privacy.adaptive?.targetQuantile ?? 0,
            clipLr: f.privacy.adaptive?.clipLr ?? 0,
            clippedCountStddev: f.privacy.adaptive?.clippedCountStddev ?? 0,
          },
        }
      : {}),
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
    roundEpsilon: r.roundEpsilon ?? 0,
    epsilon: r.epsilon ?? 0,
    clipNorm: r.clipNorm ?? 0,
    rankVariants: (r.rankVariants ?? []).map((v) => ({
      rank: v.rank,
      contentHash: v.contentHash,
      size: BigInt(v.size),
    })),
    mergedRank: r.mergedRank ?? 0,
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
