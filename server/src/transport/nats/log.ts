/** The logging surface the NATS edge writes to. */

/** Structured fields attached to a log line. */
export type LogFields = Readonly<Record<string, unknown>>;

/**
 * A minimal logger: `console` satisfies it, as does any adapter over a
 * structured logger.
 *
 * @example
 * const log: NatsLog = console;
 */
export interface NatsLog {
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

/** A logger that drops everything (the default where `log` is optional). */
export const silentLog: NatsLog = {
  info: () => {},
  warn: () => {},
  error: () => {},
};
