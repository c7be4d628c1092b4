/**
 * Resolving the options of one merge: the method's defaults (the papers'
 * values, `params.ts` and the method's own), overlaid with what was given,
 * checked once before any math runs — each parameter by its rule, then the
 * method's own combination checks.
 */
import { MergeOptionsError } from "./errors.ts";
import { MERGE_METHODS } from "./methods/registry.ts";
import { METHODS, type MergeOptions, type MethodName, PARAM_KEYS, PARAMS } from "./params.ts";

export {
  METHODS,
  type MergeOptions,
  type MethodName,
  PARAM_KEYS,
  PARAMS,
  type ParamKey,
  type ParamSpec,
} from "./params.ts";

/** Method-specific defaults (papers' values where they give one). */
export function defaultOptions(method: MethodName): MergeOptions {
  const params = Object.fromEntries(PARAM_KEYS.map((k) => [k, PARAMS[k].default]));
  return {
    method,
    rank: undefined,
    samples: undefined,
    truncation: {},
    ...params,
    ...MERGE_METHODS[method].defaults,
  } as MergeOptions;
}

/**
 * Defaults overlaid with `partial`, validated.
 *
 * @example
 * const opts = resolveOptions({ method: "from", rank: 16, k: 0.9 });
 */
export function resolveOptions(
  partial: Omit<Partial<MergeOptions>, "method"> & { method: string },
): MergeOptions {
  if (!(METHODS as readonly string[]).includes(partial.method)) {
    throw new MergeOptionsError(
      `unknown merge method "${partial.method}" (expected one of ${METHODS.join(", ")})`,
    );
  }
  const defined = Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined));
  const o: MergeOptions = { ...defaultOptions(partial.method as MethodName), ...defined } as MergeOptions;
  const check = (ok: boolean, what: string) => {
    if (!ok) throw new MergeOptionsError(`${o.method}: ${what}`);
  };
  check(
    o.rank === undefined || o.rank === "full" || (Number.isInteger(o.rank) && o.rank >= 1),
    `rank must be a positive integer or "full", got ${o.rank}`,
  );
  for (const key of PARAM_KEYS) {
    const spec = PARAMS[key];
    const problem = (spec.rule as (v: unknown) => string | undefined)(o[key]);
    check(problem === undefined, `${spec.label} ${problem}, got ${o[key]}`);
  }
  check(
    o.samples === undefined || o.samples.every((s) => Number.isFinite(s) && s >= 0),
    "sample counts must be finite and ≥ 0",
  );
  const combination = MERGE_METHODS[o.method].check?.(o);
  check(combination === undefined, combination ?? "");
  return o;
}
