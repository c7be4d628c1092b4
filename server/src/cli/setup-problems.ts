/**
 * Failures that come from the machine rather than from Tributary: a system
 * piece that is not installed (`nats-server`), one that would not start (a
 * port already taken), or a NATS JetStream cluster that cannot be reached.
 * Commands report them as one short message saying what to install or
 * configure, and exit non-zero, with no stack trace.
 */
import { StoreUnavailableError } from "../core/store-errors.ts";
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
  if (err instanceof StoreUnavailableError) return err.message;
  const code = (err as { code?: unknown } | null)?.code;
  // EACCES on a port (a file's names its path, and is reported as a file's).
  if (err instanceof Error && (code === "EADDRINUSE" || (code === "EACCES" && !("path" in err)))) {
    return `${err.message}: choose another port (--port, --ui-port, --metrics-port) or stop what holds it`;
  }
  return undefined;
}
