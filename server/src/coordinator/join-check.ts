/**
 * What a client joining a federation may claim about the adapters it will
 * send (`JoinRequest.base_model_id` and `modules`): checked against the
 * federation's schema at join, so a node learns of a wrong base model or
 * module before it trains.
 */
import type { Federation } from "../core/model.ts";
import { InvalidUpdateError } from "./errors.ts";

/** The adapters a joining client says it will send. */
export interface JoinClaim {
  /** `""` or absent: not claimed. */
  readonly baseModelId?: string;
  readonly modules?: readonly {
    readonly name: string;
    readonly dIn: number;
    readonly dOut: number;
    readonly maxRank: number;
  }[];
}

/** Throws `InvalidUpdateError` naming the field or module when `claim` does not fit `federation`'s schema. */
export function checkJoinClaim(federation: Federation, clientId: string, claim: JoinClaim): void {
  const { schema } = federation;
  if (claim.baseModelId !== undefined && claim.baseModelId !== "" && claim.baseModelId !== schema.baseModel) {
    throw new InvalidUpdateError(
      clientId,
      `base model "${claim.baseModelId}" differs from the federation's "${schema.baseModel}"`,
      { field: "base_model_id" },
    );
  }
  for (const m of claim.modules ?? []) {
    const want = schema.modules.find((s) => s.name === m.name);
    if (want === undefined || want.dIn !== m.dIn || want.dOut !== m.dOut || m.maxRank > want.maxRank) {
      throw new InvalidUpdateError(
        clientId,
        want === undefined
          ? `module ${m.name} is not in the federation's schema`
          : `module ${m.name} is ${m.dIn}→${m.dOut} rank ≤ ${m.maxRank}; the schema says ${want.dIn}→${want.dOut} rank ≤ ${want.maxRank}`,
        { module: m.name },
      );
    }
  }
}
