/**
 * The structured logger every component takes: a message plus fields, no
 * formatting in the caller. `jsonLog` writes one JSON object per line.
 * Secrets (tokens) are never passed as fields.
 */

/** Structured fields of a log line. */
export type LogFields = Readonly<Record<string, unknown>>;

/** What components log through. */
export interface Log {
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

/** Discards everything (tests, library use). */
export const silentLog: Log = { info: () => {}, warn: () => {}, error: () => {} };

const LEVELS = { info: 30, warn: 40, error: 50 } as const;

/**
 * JSON lines on `write` (stderr by default) at or above `level`
 * (`TRIBUTARY_LOG=info|warn|error|silent`).
 *
 * @example
 * const log = jsonLog({ name: "coordinator" });
 * log.info("round opened", { federation: "fed-1", round: 3 });
 */
export function jsonLog(opts: { name?: string; level?: string; write?: (line: string) => void } = {}): Log {
  const level = opts.level ?? process.env.TRIBUTARY_LOG ?? "info";
  if (level === "silent") return silentLog;
  const min = LEVELS[level as keyof typeof LEVELS] ?? LEVELS.info;
  const write = opts.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  const emit = (lvl: keyof typeof LEVELS) => (message: string, fields?: LogFields) => {
    if (LEVELS[lvl] < min) return;
    const errorField = fields?.error;
    const rest = errorField instanceof Error ? { ...fields, error: errorField.message } : (fields ?? {});
    write(
      JSON.stringify({ time: new Date().toISOString(), level: lvl, name: opts.name, msg: message, ...rest }),
    );
  };
  return { info: emit("info"), warn: emit("warn"), error: emit("error") };
}
