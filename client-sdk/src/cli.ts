/**
 * `tributary-client …`: take part in a federation from a shell script or a
 * Python/PEFT trainer, with no TypeScript. Errors become exit codes once,
 * here (see {@link CLIENT_USAGE}).
 */
import { ACTION_NAMES, type CliIo, runAction } from "./cli-commands.ts";
import { type CliEnv, parseFlags, UsageError } from "./cli-options.ts";
import { RoundFailedError, TributaryError, UnavailableError } from "./errors.ts";

export type { CliIo } from "./cli-commands.ts";

/** Help text of `tributary-client`. */
export const CLIENT_USAGE = `Usage: tributary-client <action> [options]

Take part in a federation with PEFT adapter directories (adapter_config.json +
adapter_model.safetensors, as save_pretrained() writes them).

Actions:
  join [--adapter DIR]            join the federation, print the client id and current round,
                                  save the connection (below) to the state file
  submit [--round N] [--samples S] [--metric NAME=VALUE ...] [--update-id ID] [--timeout SEC] ADAPTER_DIR
                                  upload an update (resumed after dropped connections); prints
                                  the acknowledgement. Without --round: the open round this
                                  client is selected for (waiting for one, up to --timeout).
                                  --samples: the training samples behind the update; required
                                  when the federation weights updates by them (FedAvg, FedIT,
                                  median), else sent as 0 when left out.
                                  --local-dp-clip C --local-dp-noise Z [--local-dp-delta D]:
                                  local differential privacy: clip the update to L2 norm C and
                                  add Gaussian noise Z·C before it leaves this machine; prints
                                  this client's ε over its local-DP updates (state file)
  wait [--round N] [--rank R] [--timeout SEC] [--out DIR]
                                  wait for a round's merged adapter (default: the round this
                                  client last submitted to, else the next one to finish), write it
                                  to DIR; prints "ROUND CONTENT_HASH"
  fetch [--round N] [--rank R] --out DIR
                                  write the latest (or round N's) merged adapter to DIR;
                                  prints "ROUND CONTENT_HASH"
                                  --rank R: receive it truncated to rank R where clients train at
                                  different ranks (default: the rank of the adapter this client
                                  last submitted; 0 = the whole merged adapter)
  status                          print the current round

Connection (environment variable in brackets; join saves them, so later
commands need none):
  --coordinator HOST:PORT   coordinator gRPC address (default 127.0.0.1:7070) [TRIBUTARY_COORDINATOR]
  --token-file FILE         file holding this client's token (its path is saved, not the token)
  --token TOKEN             the token itself (saved in the state file, mode 0600) [TRIBUTARY_TOKEN]
  --federation ID           federation id [TRIBUTARY_FEDERATION]
  --nats-url URL            NATS URL to download merged adapters from [TRIBUTARY_NATS_URL]
  --tls-ca FILE             connect over TLS, trusting this CA [TRIBUTARY_TLS_CA]
  --tls-cert FILE           mutual TLS: this client's certificate; no token needed then [TRIBUTARY_TLS_CERT]
  --tls-key FILE            mutual TLS: the key of --tls-cert [TRIBUTARY_TLS_KEY]
  --state FILE              state file (default .tributary/client.json) [TRIBUTARY_CLIENT_STATE]
  --retries N               retries of a failing call before giving up (default 5)
  --json                    print results as one JSON object per line

Exit codes:
  0  ok
  1  refused or failed for good (the message names the coordinator's status and reason,
     e.g. FAILED_PRECONDITION for a round that is no longer open), or an unusable adapter
  2  usage error
  3  the round failed or was aborted
  4  timed out (--timeout)
  5  coordinator unreachable after retries

Example (a Python trainer's loop, in bash):
  tributary-client join --coordinator coord:7070 --federation support-bot --token-file client.token
  for i in 1 2 3; do
    python train.py --init ./global --out ./adapter        # save_pretrained("./adapter")
    tributary-client submit --samples 1200 ./adapter && tributary-client wait --out ./global || exit $?
  done`;

const processIo: CliIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

function isTimeout(err: unknown): boolean {
  return err instanceof Error && err.name === "TimeoutError";
}

/**
 * Runs `tributary-client` with `argv` (after `client`) and returns the exit
 * code; nothing is thrown.
 *
 * @example
 * process.exitCode = await runClientCli(["wait", "--out", "./global"]);
 */
export async function runClientCli(
  argv: readonly string[],
  io: CliIo = processIo,
  env: CliEnv = process.env,
): Promise<number> {
  const [action, ...rest] = argv;
  const name = `tributary-client${action !== undefined ? ` ${action}` : ""}`;
  try {
    if (action === undefined || action === "help" || action === "--help" || action === "-h") {
      io.out(CLIENT_USAGE);
      return 0;
    }
    if (!ACTION_NAMES.includes(action)) throw new UsageError(`unknown action "${action}"`);
    const flags = parseFlags(rest);
    if (flags.values.help === true) {
      io.out(CLIENT_USAGE);
      return 0;
    }
    return await runAction(action, flags, io, env);
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`${name}: ${err.message}`);
      io.err(`Run "tributary-client --help" for the actions and options.`);
      return 2;
    }
    if (err instanceof RoundFailedError) {
      io.err(`${name}: ${err.details}`);
      return 3;
    }
    if (isTimeout(err)) {
      io.err(`${name}: timed out (--timeout)`);
      return 4;
    }
    if (err instanceof UnavailableError) {
      io.err(`${name}: ${err.message}`);
      return 5;
    }
    if (err instanceof TributaryError) {
      io.err(`${name}: ${err.message}`);
      return 1;
    }
    io.err(`${name}: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
}
