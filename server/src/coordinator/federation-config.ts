/**
 * Validation of a federation as the operator defines it (id, adapter schema,
 * merge spec, round policy), once at creation, and the merge options of its
 * rounds.
 */

import { ID_RULES, isTensorDType, isValidId, quoteValue } from "@tributary/protocol";
import type { Federation, MergeSpec } from "../core/model.ts";
import { centralDpProblem } from "../merge/dp/central-dp.ts";
import { MergeOptionsError } from "../merge/errors.ts";
import { type MergeOptions, PARAM_KEYS, resolveOptions } from "../merge/options.ts";
import { FederationConfigError } from "./errors.ts";

function isPositiveInteger(v: unknown): v is number {
  return Number.isSafeInteger(v) && (v as number) > 0;
}

/** The merge options a spec gives, before per-round sample counts. */
function specOptions(spec: MergeSpec, samples?: readonly number[]): Parameters<typeof resolveOptions>[0] {
  const params = Object.fromEntries(PARAM_KEYS.map((k) => [k, spec[k]]));
  return { ...params, method: spec.method, rank: spec.rank, samples };
}

/**
 * Checks a federation definition; throws `FederationConfigError` naming the
 * first field at fault.
 *
 * @example
 * validateFederation(federation); // before journaling CreateFederation
 */
export function validateFederation(f: Federation): void {
  const id = typeof f.id === "string" ? f.id : String(f.id);
  const check = (ok: boolean, field: string, detail: string): void => {
    if (!ok) throw new FederationConfigError(id, field, detail);
  };
  check(isValidId("federation_id", f.id), "id", `${quoteValue(f.id)} must be ${ID_RULES.federation_id}`);
  check(typeof f.name === "string", "name", "must be a string");
  check(Number.isFinite(f.createdAt), "createdAt", `must be epoch milliseconds, got ${f.createdAt}`);

  const { schema } = f;
  check(
    typeof schema.baseModel === "string" && schema.baseModel !== "",
    "schema.baseModel",
    "must be a non-empty string",
  );
  check(schema.modules.length > 0, "schema.modules", "must list at least one module");
  const seen = new Set<string>();
  schema.modules.forEach((m, i) => {
    const at = `schema.modules[${i}]`;
    check(typeof m.name === "string" && m.name !== "", `${at}.name`, "must be a non-empty string");
    check(!seen.has(m.name), `${at}.name`, `"${m.name}" is listed twice`);
    seen.add(m.name);
    for (const key of ["dIn", "dOut", "maxRank"] as const) {
      check(
        isPositiveInteger(m[key]),
        `${at}.${key}`,
        `of module ${m.name} must be a positive integer, got ${m[key]}`,
      );
    }
  });
  check(schema.dtypes.length > 0, "schema.allowedDtypes", "must list at least one dtype");
  for (const d of schema.dtypes) {
    check(isTensorDType(d), "schema.allowedDtypes", `has ${JSON.stringify(d)}, expected F32, F16 or BF16`);
  }

  try {
    resolveOptions(specOptions(f.merge));
  } catch (err) {
    if (err instanceof MergeOptionsError) {
      throw new FederationConfigError(id, "merge", `is invalid: ${err.message}`, { cause: err });
    }
    throw err;
  }

  const p = f.policy;
  check(isPositiveInteger(p.minClients), "policy.minClients", `must be an integer ≥ 1, got ${p.minClients}`);
  check(isPositiveInteger(p.quorum), "policy.quorum", `must be an integer ≥ 1, got ${p.quorum}`);
  if (p.cohortSize !== undefined) {
    check(
      isPositiveInteger(p.cohortSize),
      "policy.cohortSize",
      `must be an integer ≥ 1, got ${p.cohortSize}`,
    );
    check(
      p.quorum <= p.cohortSize,
      "policy.quorum",
      `${p.quorum} is larger than policy.cohortSize ${p.cohortSize}: no round could reach it`,
    );
  }
  if (p.cohortFraction !== undefined) {
    check(
      p.cohortFraction > 0 && p.cohortFraction <= 1,
      "policy.cohortFraction",
      `must be in (0, 1], got ${p.cohortFraction}`,
    );
  }
  check(
    Number.isFinite(p.waitAfterQuorumMs) && p.waitAfterQuorumMs >= 0,
    "policy.waitAfterQuorumMs",
    `must be ≥ 0, got ${p.waitAfterQuorumMs}`,
  );
  check(
    Number.isFinite(p.deadlineMs) && p.deadlineMs > 0,
    "policy.deadlineMs",
    `must be > 0, got ${p.deadlineMs}`,
  );
  check(
    p.onDeadline === "extend-once" || p.onDeadline === "fail",
    "policy.onDeadline",
    `must be "extend-once" or "fail", got ${JSON.stringify(p.onDeadline)}`,
  );
  check(
    isPositiveInteger(p.maxUpdateBytes),
    "policy.maxUpdateBytes",
    `must be a positive integer, got ${p.maxUpdateBytes}`,
  );
  check(
    p.autoAdvance === undefined || typeof p.autoAdvance === "boolean",
    "policy.autoAdvance",
    "must be true or false",
  );
  check(
    p.foldIntoBase === undefined || typeof p.foldIntoBase === "boolean",
    "policy.foldIntoBase",
    "must be true or false",
  );
  check(
    !(p.foldIntoBase === true && p.buffered !== undefined),
    "policy.foldIntoBase",
    "buffered rounds keep the global adapter on the coordinator; folding into the clients' base is for synchronous rounds",
  );
  if (p.buffered !== undefined) {
    const b = p.buffered;
    check(isPositiveInteger(b.size), "policy.buffered.size", `must be an integer ≥ 1, got ${b.size}`);
    check(
      p.quorum === b.size,
      "policy.quorum",
      `buffered rounds fold ${b.size} updates at a time: set policy.quorum to ${b.size} too (got ${p.quorum})`,
    );
    check(
      ["constant", "polynomial", "hinge"].includes(b.staleness.kind),
      "policy.buffered.staleness",
      `must be constant, polynomial or hinge, got ${JSON.stringify(b.staleness.kind)}`,
    );
    if (b.staleness.kind !== "constant") {
      check(
        Number.isFinite(b.staleness.a) && b.staleness.a > 0,
        "policy.buffered.stalenessA",
        `must be > 0, got ${b.staleness.a}`,
      );
    }
    if (b.staleness.kind === "hinge") {
      check(
        Number.isFinite(b.staleness.b) && b.staleness.b >= 0,
        "policy.buffered.stalenessB",
        `must be ≥ 0, got ${b.staleness.b}`,
      );
    }
    check(
      Number.isFinite(b.serverLr) && b.serverLr > 0,
      "policy.buffered.serverLr",
      `must be > 0, got ${b.serverLr}`,
    );
    check(
      Number.isInteger(b.maxStaleness) && b.maxStaleness >= 0,
      "policy.buffered.maxStaleness",
      `must be an integer ≥ 0, got ${b.maxStaleness}`,
    );
    check(
      f.merge.method === "fedavg",
      "merge.method",
      `buffered rounds fold the updates' staleness-weighted mean into the global adapter (FedBuff); use method "fedavg", not "${f.merge.method}"`,
    );
    check(f.privacy === undefined, "privacy", "central DP is not available with buffered rounds");
  }
  if (f.privacy !== undefined) {
    const dp = f.privacy;
    check(
      dp.clipNorm > 0 && Number.isFinite(dp.clipNorm),
      "privacy.clipNorm",
      `must be > 0, got ${dp.clipNorm}`,
    );
    check(
      dp.noiseMultiplier >= 0 && Number.isFinite(dp.noiseMultiplier),
      "privacy.noiseMultiplier",
      `must be ≥ 0, got ${dp.noiseMultiplier}`,
    );
    check(dp.delta > 0 && dp.delta < 1, "privacy.delta", `must be in (0, 1), got ${dp.delta}`);
    check(
      dp.epsilonBudget === undefined || (dp.epsilonBudget > 0 && Number.isFinite(dp.epsilonBudget)),
      "privacy.epsilonBudget",
      `must be > 0 (or unset for none), got ${dp.epsilonBudget}`,
    );
    if (dp.adaptive !== undefined) {
      const a = dp.adaptive;
      check(
        a.targetQuantile > 0 && a.targetQuantile < 1,
        "privacy.targetQuantile",
        `must be in (0, 1), got ${a.targetQuantile}`,
      );
      check(a.clipLr > 0 && Number.isFinite(a.clipLr), "privacy.clipLr", `must be > 0, got ${a.clipLr}`);
      check(
        a.clippedCountStddev > dp.noiseMultiplier / 2,
        "privacy.clippedCountStddev",
        `must exceed noise_multiplier / 2 = ${dp.noiseMultiplier / 2} (the count's noise is part of the privacy cost), got ${a.clippedCountStddev}`,
      );
    }
    const problem = centralDpProblem(resolveOptions(specOptions(f.merge)), dp);
    check(problem === undefined, "privacy", `cannot apply to this merge: ${problem}`);
  }
}

/**
 * The resolved merge options of one round: the federation's merge spec with
 * the papers' defaults, and the accepted updates' sample counts in merge
 * order (only FedAvg methods weight by them).
 *
 * @example
 * const opts = mergeOptionsFor(federation, updates.map((u) => u.samples));
 */
export function mergeOptionsFor(f: Federation, samples?: readonly number[]): MergeOptions {
  try {
    return resolveOptions(specOptions(f.merge, samples));
  } catch (err) {
    if (err instanceof MergeOptionsError) {
      throw new FederationConfigError(f.id, "merge", `is invalid: ${err.message}`, { cause: err });
    }
    throw err;
  }
}
