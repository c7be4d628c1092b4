/**
 * `tributary admin …`: the operator's side of a running coordinator over
 * `OperatorService` — create a federation, enroll clients (printing each
 * token once), start/close/abort rounds, list rounds and updates, status.
 */
import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { create, toJson } from "@bufbuild/protobuf";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import {
  AbortRoundRequestSchema,
  CloseRoundRequestSchema,
  callUnary,
  coordinatorTarget,
  coordinatorTargetProblem,
  EnrollClientRequestSchema,
  FederationSchema,
  GetStatusRequestSchema,
  type GrpcClient,
  ListRoundsRequestSchema,
  ListUpdatesRequestSchema,
  makeClient,
  OperatorService,
  RetryMergeRequestSchema,
  type Round,
  RoundState,
  readableDetails,
  StartRoundRequestSchema,
} from "@tributary/protocol";
import { integerOption, UsageError } from "./args.ts";
import { readFederationFile } from "./federation-file.ts";
import type { CliIo } from "./io.ts";
import { DEFAULT_DATA_DIR } from "./serve-command.ts";
import { CommandError } from "./system-errors.ts";

/** Help text of `tributary admin`. */
export const ADMIN_USAGE = `Usage: tributary admin <action> [options]

Actions:
  create-federation --file FED.json   create a federation (CreateFederationRequest as protobuf JSON)
  enroll --federation F --client C [--rotate]
                                      enroll a client; prints its token (shown once).
                                      An enrolled client is refused unless --rotate,
                                      which replaces its token: the old one stops working
  start-round --federation F          open the next round now
  close-round --federation F [--round N]          merge the open round with what it has
  abort-round --federation F [--round N] [--reason TEXT]
  retry-merge --federation F --round N   merge again a round whose merge failed on the
                                      coordinator's side (full disk, I/O fault)
  rounds --federation F               list rounds
  updates --federation F --round N    list a round's accepted updates and merge weights
  status                              federations, open rounds, connected clients

Connection (environment variable in brackets):
  --coordinator HOST:PORT   (default 127.0.0.1:7070) [TRIBUTARY_COORDINATOR];
                            several coordinators as IP:PORT,IP:PORT
  --token-file FILE         operator token (default: data/coordinator/operator.token)
                            [TRIBUTARY_OPERATOR_TOKEN holds the token itself]
  --tls-ca FILE             CA certificate: connect over TLS`;

const STATE_NAMES: Record<RoundState, string> = {
  [RoundState.UNSPECIFIED]: "?",
  [RoundState.OPEN]: "open",
  [RoundState.MERGING]: "merging",
  [RoundState.PUBLISHED]: "published",
  [RoundState.FAILED]: "failed",
  [RoundState.ABORTED]: "aborted",
};

function fmtEpsilon(e: number): string {
  return Number.isFinite(e) ? e.toFixed(4) : "∞";
}

function iso(ts: Parameters<typeof timestampMs>[0] | undefined): string {
  return ts === undefined ? "–" : new Date(timestampMs(ts)).toISOString().replace(".000Z", "Z");
}

function roundLine(r: Round): string {
  const privacy = r.epsilon > 0 ? `  ε ${fmtEpsilon(r.roundEpsilon)} (total ${fmtEpsilon(r.epsilon)})` : "";
  const extra =
    r.resultContentHash !== ""
      ? ` ${r.resultContentHash.slice(0, 12)}…${privacy}`
      : r.failureReason !== ""
        ? ` (${r.failureReason})`
        : "";
  return `${String(r.number).padStart(4)}  ${STATE_NAMES[r.state].padEnd(9)}  ${String(r.acceptedUpdates).padStart(3)}/${r.cohortClientIds.length}  opened ${iso(r.openTime)}${extra}`;
}

/** A gRPC error with its status name, as the CLI prints it. */
export function grpcErrorText(err: unknown): string | undefined {
  if (err instanceof Error && "code" in err && typeof err.code === "number" && "details" in err) {
    return `${grpc.status[err.code]}: ${readableDetails(String(err.details))}`;
  }
  return undefined;
}

/**
 * The operator token from `file` (default: the coordinator's default data
 * directory); a missing file says where the token is and how to name it.
 */
async function readOperatorToken(file: string | undefined): Promise<string> {
  const path = file ?? `${DEFAULT_DATA_DIR}/operator.token`;
  try {
    return (await readFile(path, "utf8")).trim();
  } catch (err) {
    if ((err as { code?: unknown }).code !== "ENOENT") throw err;
    throw new CommandError(
      `no operator token at ${path}${file === undefined ? " (the default, relative to this directory)" : ""}: ` +
        "pass --token-file FILE (tributary serve prints where it wrote the token) or set TRIBUTARY_OPERATOR_TOKEN",
    );
  }
}

/** Runs `tributary admin`; returns the exit code. */
export async function runAdmin(argv: readonly string[], io: CliIo): Promise<number> {
  const [action, ...rest] = argv;
  if (action === undefined || action === "--help" || action === "-h" || action === "help") {
    io.out(ADMIN_USAGE);
    return 0;
  }
  let v: Record<string, string | boolean | undefined>;
  try {
    const text = { type: "string" } as const;
    v = parseArgs({
      args: rest,
      strict: true,
      options: {
        coordinator: text,
        "token-file": text,
        "tls-ca": text,
        federation: text,
        client: text,
        round: text,
        reason: text,
        file: text,
        rotate: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    }).values;
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  if (v.help === true) {
    io.out(ADMIN_USAGE);
    return 0;
  }
  const s = (k: string) => v[k] as string | undefined;
  const need = (k: string) => {
    const x = s(k);
    if (x === undefined || x === "") throw new UsageError(`${action} needs --${k}`);
    return x;
  };
  const address = s("coordinator") ?? process.env.TRIBUTARY_COORDINATOR ?? "127.0.0.1:7070";
  const token = process.env.TRIBUTARY_OPERATOR_TOKEN ?? (await readOperatorToken(s("token-file")));
  const md = new grpc.Metadata();
  md.set("authorization", `Bearer ${token}`);
  const ca = s("tls-ca");
  const creds =
    ca === undefined ? grpc.credentials.createInsecure() : grpc.credentials.createSsl(await readFile(ca));
  const problem = coordinatorTargetProblem(address);
  if (problem !== undefined) throw new UsageError(`--coordinator: ${problem}`);
  const op: GrpcClient<typeof OperatorService> = makeClient(
    OperatorService,
    coordinatorTarget(address),
    creds,
  );
  try {
    switch (action) {
      case "create-federation": {
        const res = await callUnary(
          op,
          "createFederation",
          await readFederationFile(need("file"), "--file"),
          md,
        );
        io.out(JSON.stringify(toJson(FederationSchema, res.federation!), null, 2));
        return 0;
      }
      case "enroll": {
        const res = await callUnary(
          op,
          "enrollClient",
          create(EnrollClientRequestSchema, {
            federationId: need("federation"),
            clientId: need("client"),
            rotate: v.rotate === true,
          }),
          md,
        );
        io.err(
          v.rotate === true
            ? `new token of ${res.clientId} in ${s("federation")} (shown once; its old token no longer works):`
            : `enrolled ${res.clientId} in ${s("federation")}; its token (shown once):`,
        );
        io.out(res.token);
        return 0;
      }
      case "start-round":
      case "close-round":
      case "abort-round": {
        const federationId = need("federation");
        const round = integerOption("round", s("round")) ?? 0;
        const res =
          action === "start-round"
            ? await callUnary(op, "startRound", create(StartRoundRequestSchema, { federationId }), md)
            : action === "close-round"
              ? await callUnary(
                  op,
                  "closeRound",
                  create(CloseRoundRequestSchema, { federationId, round }),
                  md,
                )
              : await callUnary(
                  op,
                  "abortRound",
                  create(AbortRoundRequestSchema, { federationId, round, reason: s("reason") ?? "" }),
                  md,
                );
        io.out(roundLine(res.round!));
        return 0;
      }
      case "retry-merge": {
        const res = await callUnary(
          op,
          "retryMerge",
          create(RetryMergeRequestSchema, {
            federationId: need("federation"),
            round: integerOption("round", need("round")) ?? 0,
          }),
          md,
        );
        io.out(roundLine(res.round!));
        return 0;
      }
      case "rounds": {
        const res = await callUnary(
          op,
          "listRounds",
          create(ListRoundsRequestSchema, { federationId: need("federation") }),
          md,
        );
        io.out(`${"round".padStart(4)}  ${"state".padEnd(9)}  updates  opened / result`);
        for (const r of res.rounds) io.out(roundLine(r));
        return 0;
      }
      case "updates": {
        const res = await callUnary(
          op,
          "listUpdates",
          create(ListUpdatesRequestSchema, {
            federationId: need("federation"),
            round: integerOption("round", need("round"))!,
          }),
          md,
        );
        io.out("client                update                    samples      bytes  weight  received");
        for (const u of res.updates) {
          io.out(
            `${u.clientId.padEnd(20)}  ${u.updateId.padEnd(24)}  ${String(u.sampleCount).padStart(7)}  ${String(u.sizeBytes).padStart(9)}  ${u.mergeWeight.toFixed(3)}  ${iso(u.receiveTime)}${u.mergeExclusion ? `  EXCLUDED: ${u.mergeExclusion}` : ""}`,
          );
        }
        return 0;
      }
      case "status": {
        const res = await callUnary(op, "getStatus", create(GetStatusRequestSchema), md);
        io.out(`federations: ${res.federations.map((f) => f.id).join(", ") || "none"}`);
        for (const r of res.openRounds) {
          io.out(`  ${r.federationId} ${roundLine(r)}`);
          if (r.state !== RoundState.OPEN) continue;
          // Who the round still waits for: its cohort less those with an accepted update.
          const updates = await callUnary(
            op,
            "listUpdates",
            create(ListUpdatesRequestSchema, { federationId: r.federationId, round: r.number }),
            md,
          );
          const done = new Set(updates.updates.map((u) => u.clientId));
          const awaited = r.cohortClientIds.filter((c) => !done.has(c));
          io.out(
            `    awaiting ${awaited.length} of ${r.cohortClientIds.length}: ${awaited.join(", ") || "nobody"}`,
          );
        }
        for (const [id, why] of Object.entries(res.waitingReasons).sort(([a], [b]) => (a < b ? -1 : 1)))
          io.out(`  ${id}: no round open: ${why}`);
        for (const [id, p] of Object.entries(res.privacy).sort(([a], [b]) => (a < b ? -1 : 1)))
          io.out(
            `  ${id}: privacy ε = ${fmtEpsilon(p.epsilon)} at δ = ${p.delta} over ${p.rounds} round(s)${p.epsilonBudget > 0 ? ` of a budget of ${p.epsilonBudget}${p.budgetSpent ? " (budget spent)" : ""}` : ""}`,
          );
        io.out(`connected clients: ${res.connectedClients.length}`);
        for (const c of res.connectedClients)
          io.out(
            `  ${c.federationId}/${c.clientId} since ${iso(c.joinTime)}${c.coordinatorId !== "" ? ` (on ${c.coordinatorId})` : ""}`,
          );
        if (res.coordinatorId !== "") {
          io.out(`coordinators (this one: ${res.coordinatorId}):`);
          for (const c of res.coordinators)
            io.out(
              `  ${c.coordinatorId}${c.address !== "" ? ` at ${c.address}` : ""}, seen ${iso(c.lastSeenTime)}`,
            );
          io.out("leaders:");
          for (const l of res.leaders)
            io.out(
              `  ${l.federationId}: ${l.coordinatorId} (term ${l.term})${l.address !== "" ? ` at ${l.address}` : ""}`,
            );
        }
        if (res.mergeWorkers.length > 0) {
          io.out(`merge workers: ${res.mergeWorkers.length}`);
          for (const w of res.mergeWorkers)
            io.out(`  ${w.workerId} on ${w.host}: ${w.threads} at once, ${w.backend}`);
        }
        return 0;
      }
      default:
        throw new UsageError(`unknown admin action "${action}"`);
    }
  } catch (err) {
    const text = grpcErrorText(err);
    if (text === undefined) throw err;
    io.err(`tributary admin ${action}: ${text}`);
    return 1;
  } finally {
    op.close();
  }
}
