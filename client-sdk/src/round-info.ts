/** A round as the SDK hands it out: plain fields instead of the protobuf message. */
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { type AdapterRankVariant, type Round, RoundState } from "@tributary/protocol";

/** Life cycle of a round: `open` → `merging` → `published`, or `failed` / `aborted`. */
export type RoundStateName = "open" | "merging" | "published" | "failed" | "aborted" | "unspecified";

/** One round of a federation, as last seen. */
export interface RoundInfo {
  readonly federationId: string;
  /** 1 for the first round, increasing by one. */
  readonly number: number;
  readonly state: RoundStateName;
  /** Updates accepted so far. */
  readonly acceptedUpdates: number;
  /** Client ids selected for the round; only they may submit. */
  readonly cohort: readonly string[];
  /** sha256 (hex) of the merged adapter, once `published`. */
  readonly resultContentHash?: string;
  /**
   * Once `published`, in a federation whose clients train at different
   * ranks: the merged adapter truncated exactly to each smaller client rank
   * (FlexLoRA), ascending.
   */
  readonly rankVariants?: readonly AdapterRankVariant[];
  /** With `rankVariants`: the merged adapter's own rank. */
  readonly mergedRank?: number;
  /** Why the round failed or was aborted. */
  readonly failureReason?: string;
  readonly openTime?: Date;
  /** When the round fails without a quorum. */
  readonly deadline?: Date;
}

const NAMES: Record<RoundState, RoundStateName> = {
  [RoundState.UNSPECIFIED]: "unspecified",
  [RoundState.OPEN]: "open",
  [RoundState.MERGING]: "merging",
  [RoundState.PUBLISHED]: "published",
  [RoundState.FAILED]: "failed",
  [RoundState.ABORTED]: "aborted",
};

/** Whether a round can change no more. */
export function isTerminal(state: RoundStateName): boolean {
  return state === "published" || state === "failed" || state === "aborted";
}

/** The {@link RoundInfo} of a `tributary.v1.Round`. */
export function roundFromProto(r: Round): RoundInfo {
  return {
    federationId: r.federationId,
    number: r.number,
    state: NAMES[r.state] ?? "unspecified",
    acceptedUpdates: r.acceptedUpdates,
    cohort: [...r.cohortClientIds],
    ...(r.resultContentHash !== "" ? { resultContentHash: r.resultContentHash } : {}),
    ...(r.rankVariants.length > 0
      ? {
          rankVariants: r.rankVariants.map((v) => ({
            rank: v.rank,
            contentHash: v.contentHash,
            size: Number(v.size),
          })),
          mergedRank: r.mergedRank,
        }
      : {}),
    ...(r.failureReason !== "" ? { failureReason: r.failureReason } : {}),
    ...(r.openTime !== undefined ? { openTime: new Date(timestampMs(r.openTime)) } : {}),
    ...(r.deadlineTime !== undefined ? { deadline: new Date(timestampMs(r.deadlineTime)) } : {}),
  };
}
