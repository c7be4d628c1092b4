/**
 * The one logging surface of every Tributary package: a message plus
 * structured fields, no formatting in the caller. The coordinator implements
 * it with pino (`@tributary/server`'s `pinoLog`); `console` satisfies it too.
 * Secrets (tokens, passwords) are never passed as fields.
 */

/** Structured fields of a log line. */
export type LogFields = Readonly<Record<string, unknown>>;

/**
 * What components log through.
 *
 * @example
 * const log: Log = console;
 * log.warn("waiting for stream", { stream: "TRIBUTARY_ROUNDS" });
 */
export interface Log {
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

/** Discards everything (the default where a `log` is optional). */
export const silentLog: Log = { info: () => {}, warn: () => {}, error: () => {} };
