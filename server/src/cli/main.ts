/**
 * The `tributary` command: dispatches to subcommands and maps typed errors to
 * exit codes once: 2 for usage mistakes (bad flags, unknown method), 1 for
 * inputs that cannot be used (unreadable or malformed adapters, NaN/Inf,
 * mismatched inputs) and for unexpected failures. Every failure is one or
 * two lines saying what to do; `--debug` (anywhere in the arguments) or
 * `TRIBUTARY_DEBUG=1` prints an unexpected failure's stack trace.
 */

import { AdapterFormatError } from "@tributary/protocol";
import { MergeInputError, MergeOptionsError } from "../merge/errors.ts";
import { ADAPTERS_USAGE, runAdapters } from "./adapters-command.ts";
import { ADMIN_USAGE, runAdmin } from "./admin-command.ts";
import { UsageError } from "./args.ts";
import { tuneHeapGrowth } from "./heap-growth.ts";
import { type CliIo, processIo } from "./io.ts";
import { MERGE_USAGE, runMerge } from "./merge-command.ts";
import { PRIVACY_USAGE, runPrivacy } from "./privacy-command.ts";
import { runServe, SERVE_USAGE } from "./serve-command.ts";
import { setupProblem } from "./setup-problems.ts";
import {
  CommandError,
  debugRequested,
  exitQuietlyOnClosedStdout,
  systemErrorText,
  unexpectedFailureLines,
} from "./system-errors.ts";
import { runWorker, WORKER_USAGE } from "./worker-command.ts";

export type { CliIo } from "./io.ts";

const USAGE = `Usage: tributary <command> [options]

Commands:
  serve    run the coordinator (gRPC + NATS), with embedded defaults
  worker   merge modules for coordinators on a JetStream store, on any machine
  admin    operate a running coordinator: federations, enrollment, rounds, status
  merge    merge PEFT LoRA adapter directories into a new adapter (offline)
  adapters synth: write synthetic adapters that fit a federation, to try it
  privacy  epsilon | noise: the differential-privacy accountant, offline
  client   take part in a federation as a training client (join, submit, wait, fetch, status)
  help     show this help, or a command's: tributary help merge

Run "tributary <command> --help" for a command's options; --debug (or
TRIBUTARY_DEBUG=1) shows the stack trace of an unexpected failure.`;

/** Help text of each built-in subcommand. */
const USAGES: Record<string, string> = {
  merge: MERGE_USAGE,
  serve: SERVE_USAGE,
  admin: ADMIN_USAGE,
  worker: WORKER_USAGE,
  adapters: ADAPTERS_USAGE,
  privacy: PRIVACY_USAGE,
};

/**
 * Runs the CLI with `argv` (without `node` and the script) and returns the
 * exit code.
 *
 * @example
 * process.exitCode = await main(["merge", "--method", "from", "--out", "merged", "a", "b"]);
 */
export async function main(args: readonly string[], io: CliIo = processIo): Promise<number> {
  const { debug, argv } = debugRequested(args);
  if (io === processIo) {
    exitQuietlyOnClosedStdout();
    tuneHeapGrowth();
  }
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case undefined:
      case "help":
      case "--help":
      case "-h":
        if (rest[0] === "client") {
          const { CLIENT_USAGE } = await import("@tributary/client/cli");
          io.out(CLIENT_USAGE);
        } else io.out(USAGES[rest[0] ?? ""] ?? USAGE);
        return 0;
      case "merge":
        return await runMerge(rest, io);
      case "serve":
        return await runServe(rest, io);
      case "admin":
        return await runAdmin(rest, io);
      case "worker":
        return await runWorker(rest, io);
      case "adapters":
        return await runAdapters(rest, io);
      case "privacy":
        return await runPrivacy(rest, io);
      case "client": {
        // Loaded on demand: the client SDK is not needed by the other commands.
        const { runClientCli } = await import("@tributary/client/cli");
        return await runClientCli(rest, io);
      }
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (err) {
    return reportError(err, command, io, debug);
  }
}

function reportError(err: unknown, command: string | undefined, io: CliIo, debug: boolean): number {
  if (err instanceof UsageError || err instanceof MergeOptionsError) {
    io.err(`tributary: ${err.message}`);
    io.err(USAGES[command ?? ""] ?? USAGE);
    return 2;
  }
  if (err instanceof AdapterFormatError || err instanceof MergeInputError || err instanceof CommandError) {
    io.err(`tributary: ${err.message}`);
    return 1;
  }
  const problem = setupProblem(err);
  if (problem !== undefined) {
    io.err(`tributary: ${problem}`);
    return 1;
  }
  const system = debug ? undefined : systemErrorText(err);
  if (system !== undefined) {
    io.err(`tributary: ${system}`);
    return 1;
  }
  const [first, ...more] = unexpectedFailureLines(err, debug);
  io.err(`tributary: ${first}`);
  for (const line of more) io.err(line);
  return 1;
}
