/**
 * `adapter_config.json` of a PEFT LoRA adapter: the fields that decide each
 * module's rank and scaling, validated, plus the raw object so a writer can
 * emit every other field unchanged. Per-module overrides follow PEFT: a
 * `rank_pattern` / `alpha_pattern` key matches module `m` when
 * `^(.*\.)?(key)$` matches `m`, and the first matching key wins.
 */
import { AdapterFormatError, jsonNestingDepth, MAX_JSON_DEPTH } from "@tributary/protocol";

/** The LoRA fields of an adapter config (PEFT defaults filled in). */
export interface AdapterConfig {
  /** Default rank `r` (PEFT default 8). */
  readonly r: number;
  /** Default `lora_alpha` (PEFT default 8). */
  readonly loraAlpha: number;
  /** rsLoRA: scaling is `alpha / √r` instead of `alpha / r`. */
  readonly useRslora: boolean;
  /** Module pattern → rank, in file order. */
  readonly rankPattern: Readonly<Record<string, number>>;
  /** Module pattern → alpha, in file order. */
  readonly alphaPattern: Readonly<Record<string, number>>;
  /** `base_model_name_or_path`, when given. */
  readonly baseModel?: string;
  /** `target_modules` as written (a regex string or a list of names). */
  readonly targetModules?: string | readonly string[] | null;
  /** `modules_to_save` as written. */
  readonly modulesToSave?: readonly string[] | null;
  /** The whole parsed JSON object, every field as written. */
  readonly raw: Readonly<Record<string, unknown>>;
}

/** PEFT's default rank and alpha. */
export const DEFAULT_RANK = 8;
/** PEFT's default `lora_alpha`. */
export const DEFAULT_ALPHA = 8;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isStringList(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((s) => typeof s === "string");
}

/** Characters a `rank_pattern` / `alpha_pattern` key may have: module-name characters only. */
const PATTERN_KEY = /^[A-Za-z0-9_.-]{1,512}$/;
/** Most keys a pattern may have. */
export const MAX_PATTERN_KEYS = 4096;

/**
 * Whether a `rank_pattern` / `alpha_pattern` key applies to `moduleName`: the
 * name equals the key or ends in `.` + key — what PEFT's regular expression
 * `(.*\.)?<key>$` does for keys without regular-expression syntax. Keys are
 * matched literally, never compiled: a key is client input, and a regular
 * expression from a client could stall the coordinator.
 */
export function patternMatches(key: string, moduleName: string): boolean {
  return moduleName === key || (moduleName.length > key.length && moduleName.endsWith(`.${key}`));
}

/** The value of the first key of `pattern` matching `moduleName`, PEFT-style. */
function lookup(pattern: Readonly<Record<string, number>>, moduleName: string): number | undefined {
  for (const [key, value] of Object.entries(pattern)) if (patternMatches(key, moduleName)) return value;
  return undefined;
}

/**
 * Validates a parsed `adapter_config.json` object. Throws `AdapterFormatError`
 * naming `file` and the field.
 */
export function adapterConfigFromObject(raw: unknown, file: string): AdapterConfig {
  const fail = (msg: string, cause?: unknown): never => {
    throw new AdapterFormatError(
      `${file}: ${msg}`,
      file,
      undefined,
      cause === undefined ? undefined : { cause },
    );
  };
  if (!isRecord(raw)) return fail("expected a JSON object");
  const field = (k: string): string => `"${k}" is ${JSON.stringify(raw[k])}`;
  if (raw.peft_type !== undefined && raw.peft_type !== "LORA") {
    fail(`${field("peft_type")}, expected "LORA" (only LoRA adapters can be merged)`);
  }
  if (raw.use_dora === true) {
    fail("DoRA adapters are not supported: their magnitude vectors cannot be merged as task vectors");
  }
  const r = raw.r ?? DEFAULT_RANK;
  if (!Number.isSafeInteger(r) || (r as number) <= 0) fail(`${field("r")}, expected a positive integer`);
  const alpha = raw.lora_alpha ?? DEFAULT_ALPHA;
  if (typeof alpha !== "number" || !Number.isFinite(alpha) || alpha <= 0) {
    fail(`${field("lora_alpha")}, expected a positive number`);
  }
  const useRslora = raw.use_rslora ?? false;
  if (typeof useRslora !== "boolean") fail(`${field("use_rslora")}, expected true or false`);
  const rankPattern = parsePattern(raw, "rank_pattern", (v) => Number.isSafeInteger(v) && v > 0, fail);
  const alphaPattern = parsePattern(raw, "alpha_pattern", (v) => Number.isFinite(v) && v > 0, fail);
  const base = raw.base_model_name_or_path;
  if (base !== undefined && base !== null && typeof base !== "string") {
    fail(`${field("base_model_name_or_path")}, expected a string`);
  }
  const target = raw.target_modules;
  if (target !== undefined && target !== null && typeof target !== "string" && !isStringList(target)) {
    fail(`${field("target_modules")}, expected a string or a list of strings`);
  }
  const save = raw.modules_to_save;
  if (save !== undefined && save !== null && !isStringList(save)) {
    fail(`${field("modules_to_save")}, expected a list of strings`);
  }
  return {
    r: r as number,
    loraAlpha: alpha as number,
    useRslora: useRslora as boolean,
    rankPattern,
    alphaPattern,
    ...(typeof base === "string" ? { baseModel: base } : {}),
    ...(target !== undefined ? { targetModules: target as string | string[] | null } : {}),
    ...(save !== undefined ? { modulesToSave: save as string[] | null } : {}),
    raw,
  };
}

function parsePattern(
  raw: Record<string, unknown>,
  name: string,
  valid: (v: number) => boolean,
  fail: (msg: string, cause?: unknown) => never,
): Readonly<Record<string, number>> {
  const p = raw[name];
  if (p === undefined || p === null) return {};
  if (!isRecord(p))
    return fail(`"${name}" is ${JSON.stringify(p)}, expected an object of module pattern → number`);
  const entries = Object.entries(p);
  if (entries.length > MAX_PATTERN_KEYS)
    fail(`"${name}" has ${entries.length} keys, at most ${MAX_PATTERN_KEYS}`);
  for (const [key, value] of entries) {
    if (typeof value !== "number" || !valid(value)) {
      fail(`"${name}" entry "${key}" is ${JSON.stringify(value)}, expected a positive number`);
    }
    if (!PATTERN_KEY.test(key)) {
      fail(
        `"${name}" key ${JSON.stringify(key.slice(0, 80))} is not a module name (or dotted suffix of one): ` +
          "keys are matched literally, so regular-expression syntax is not accepted; list the modules by name",
      );
    }
  }
  return Object.fromEntries(entries) as Record<string, number>;
}

/**
 * Parses `adapter_config.json` text. Throws `AdapterFormatError` naming `file`.
 *
 * @example
 * const config = parseAdapterConfig(await readFile(path, "utf8"), path);
 * scalingFor(config, "model.layers.0.self_attn.q_proj", rankFor(config, "model.layers.0.self_attn.q_proj"));
 */
export function parseAdapterConfig(text: string, file: string): AdapterConfig {
  if (jsonNestingDepth(text, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) {
    throw new AdapterFormatError(`${file}: JSON is nested deeper than ${MAX_JSON_DEPTH} levels`, file);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new AdapterFormatError(
      `${file}: not valid JSON (${err instanceof Error ? err.message : String(err)})`,
      file,
      undefined,
      { cause: err },
    );
  }
  return adapterConfigFromObject(raw, file);
}

/** Rank of module `moduleName` (no `base_model.model.` prefix): its `rank_pattern` entry, else `r`. */
export function rankFor(config: AdapterConfig, moduleName: string): number {
  return lookup(config.rankPattern, moduleName) ?? config.r;
}

/** `lora_alpha` of module `moduleName`: its `alpha_pattern` entry, else `lora_alpha`. */
export function alphaFor(config: AdapterConfig, moduleName: string): number {
  return lookup(config.alphaPattern, moduleName) ?? config.loraAlpha;
}

/**
 * PEFT's scaling of module `moduleName` at rank `rank`.
 * Reference: `alpha / rank`, or `alpha / √rank` with rsLoRA.
 */
export function scalingFor(config: AdapterConfig, moduleName: string, rank: number): number {
  const alpha = alphaFor(config, moduleName);
  return config.useRslora ? alpha / Math.sqrt(rank) : alpha / rank;
}
