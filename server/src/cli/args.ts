/** Command-line parsing helpers shared by the `tributary` subcommands. */
import { parseArgs } from "node:util";

/** A command-line mistake: printed with the usage, exit code 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** Parses a finite number option, naming the flag on error. */
export function numberOption(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n))
    throw new UsageError(`--${flag} expects a number, got "${value}"`);
  return n;
}

/** Parses an integer option, naming the flag on error. */
export function integerOption(flag: string, value: string | undefined): number | undefined {
  const n = numberOption(flag, value);
  if (n !== undefined && !Number.isInteger(n))
    throw new UsageError(`--${flag} expects an integer, got "${value}"`);
  return n;
}

/** Parses a value that must be one of `choices`. */
export function choiceOption<T extends string>(
  flag: string,
  value: string | undefined,
  choices: readonly T[],
): T | undefined {
  if (value === undefined) return undefined;
  if (!(choices as readonly string[]).includes(value)) {
    throw new UsageError(`--${flag} must be one of ${choices.join(", ")}, got "${value}"`);
  }
  return value as T;
}

/** Parses a comma-separated list of numbers (e.g. `--weights 100,250,80`). */
export function numberListOption(flag: string, value: string | undefined): number[] | undefined {
  if (value === undefined) return undefined;
  return value.split(",").map((v) => {
    const n = numberOption(flag, v);
    if (n === undefined) throw new UsageError(`--${flag}: empty entry in "${value}"`);
    return n;
  });
}

/** A command's parsed flags: each string flag's value (if given), and whether `--help` was. */
export interface ParsedFlags {
  readonly help: boolean;
  /** The value of `--flag`, else of the environment variable `env` (when given). */
  value(flag: string, env?: string): string | undefined;
}

/**
 * Parses `argv` strictly: every flag in `flags` takes a value, and `--help`/`-h`;
 * anything else is a `UsageError`.
 *
 * @example
 * const flags = parseFlags(argv, ["nats-url", "threads"]);
 * const url = flags.value("nats-url", "TRIBUTARY_NATS_URL");
 */
export function parseFlags(argv: readonly string[], flags: readonly string[]): ParsedFlags {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args: [...argv],
      strict: true,
      options: {
        ...Object.fromEntries(flags.map((f) => [f, { type: "string" as const }])),
        help: { type: "boolean", short: "h" },
      },
    }).values;
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  return {
    help: values.help === true,
    value: (flag, env) =>
      (values[flag] as string | undefined) ?? (env !== undefined ? process.env[env] : undefined),
  };
}
