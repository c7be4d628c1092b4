/**
 * The one or two lines a command prints for a failure that is not one of its
 * own typed errors: a Node system error (a missing file, a permission, a
 * path that exists) says which path and what to do; anything else is its
 * message and how to see the stack trace (`--debug` or `TRIBUTARY_DEBUG=1`).
 */

/** A failure the user fixes, said in one line (exit code 1, no usage, no stack trace). */
export class CommandError extends Error {
  override readonly name = "CommandError";
}

/** Whether stack traces were asked for: `--debug` (taken out of `argv`) or `TRIBUTARY_DEBUG=1`. */
export function debugRequested(argv: readonly string[]): {
  readonly debug: boolean;
  readonly argv: string[];
} {
  const rest = argv.filter((a) => a !== "--debug");
  const env = process.env.TRIBUTARY_DEBUG;
  return {
    debug: rest.length !== argv.length || (env !== undefined && env !== "" && env !== "0"),
    argv: rest,
  };
}

interface SystemError extends Error {
  readonly code: string;
  readonly syscall?: string;
  readonly path?: string;
  readonly dest?: string;
}

function isSystemError(err: unknown): err is SystemError {
  return err instanceof Error && typeof (err as { code?: unknown }).code === "string" && "syscall" in err;
}

/**
 * One line for a Node system error (`ENOENT`, `EACCES`, `EEXIST`, …) naming
 * the path and what to do; `undefined` for anything else.
 *
 * @example
 * systemErrorText(Object.assign(new Error("…"), { code: "ENOENT", syscall: "open", path: "fed.json" }));
 * // "fed.json: no such file or directory"
 */
export function systemErrorText(err: unknown): string | undefined {
  if (!isSystemError(err)) return undefined;
  const path = err.path ?? "";
  const at = path !== "" ? `${path}: ` : "";
  switch (err.code) {
    case "ENOENT":
      return `${at}no such file or directory`;
    case "EACCES":
    case "EPERM":
      return `${at}permission denied (${err.syscall}); check the path's owner and mode`;
    case "EEXIST":
      return `${err.dest ?? path}: already exists; choose another path or remove it first`;
    case "EISDIR":
      return `${at}is a directory, where a file was expected`;
    case "ENOTDIR":
      return `${at}a part of this path is not a directory`;
    case "ENOSPC":
      return `${at}no space left on the device; free some and run the command again`;
    case "EMFILE":
    case "ENFILE":
      return "too many open files; raise the limit (ulimit -n) and run the command again";
    case "ECONNREFUSED":
      return `${err.message.replace(/^connect /, "")}: nothing listens there; is the address right and the server running?`;
    default:
      return `${err.message} (${err.code})`;
  }
}

/**
 * The lines to print for an unexpected failure: its message and a hint
 * about `--debug`, or the stack trace when `debug`.
 */
export function unexpectedFailureLines(err: unknown, debug: boolean): string[] {
  if (debug) return [err instanceof Error ? (err.stack ?? err.message) : String(err)];
  const message =
    err instanceof Error ? `${err.name !== "Error" ? `${err.name}: ` : ""}${err.message}` : String(err);
  return [message, "(unexpected; run again with --debug or TRIBUTARY_DEBUG=1 to see the stack trace)"];
}

let pipeGuarded = false;

/**
 * Makes a closed stdout (`tributary admin rounds … | head -4`) end the
 * process quietly instead of with an `EPIPE` stack trace.
 */
export function exitQuietlyOnClosedStdout(): void {
  if (pipeGuarded) return;
  pipeGuarded = true;
  process.stdout.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw err;
  });
}
