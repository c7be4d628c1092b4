/**
 * Failures that come from the machine rather than from Tributary: a system
 * piece that is not installed (`nats-server`), or one that would not start
 * (a port already taken). Commands report them as one short message saying
 * what to install or configure, and exit non-zero, with no stack trace.
 */
import { NatsServerNotFoundError, NatsServerStartError } from "../transport/nats/errors.ts";

/**
 * The message to print for `err` when it is a setup problem, else `undefined`
 * (the caller reports it as an unexpected failure).
 *
 * @example
 * const problem = setupProblem(err);
 * if (problem !== undefined) { console.error(`tributary: ${problem}`); process.exitCode = 1; }
 */
export function setupProblem(err: unknown): string | undefined {
  if (err instanceof NatsServerNotFoundError || err instanceof NatsServerStartError) return err.message;
  const code = (err as { code?: unknown } | null)?.code;
  if (err instanceof Error && (code === "EADDRINUSE" || code === "EACCES")) {
    return `${err.message}: choose another port (--port, --ui-port, --metrics-port) or stop what holds it`;
  }
  return undefined;
}
