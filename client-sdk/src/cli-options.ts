/**
 * Flags of `tributary client`, and the connection settings they resolve to:
 * a flag wins over its environment variable, which wins over the state file
 * written by `join`, which wins over the default.
 */
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { type ClientState, DEFAULT_STATE_FILE } from "./cli-state.ts";

/** A command-line mistake: printed with the usage, exit code 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** Parsed flags of one `tributary client` command. */
export interface CliFlags {
  readonly values: Readonly<Record<string, string | boolean | string[] | undefined>>;
  readonly positionals: readonly string[];
}

const text = { type: "string" } as const;
const OPTIONS = {
  coordinator: text,
  token: text,
  "token-file": text,
  federation: text,
  "nats-url": text,
  "tls-ca": text,
  "tls-cert": text,
  "tls-key": text,
  state: text,
  retries: text,
  round: text,
  rank: text,
  samples: text,
  "local-dp-clip": text,
  "local-dp-noise": text,
  "local-dp-delta": text,
  metric: { type: "string", multiple: true },
  "update-id": text,
  timeout: text,
  out: text,
  adapter: text,
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

/** Parses `argv` (after the command name). */
export function parseFlags(argv: readonly string[]): CliFlags {
  try {
    const { values, positionals } = parseArgs({
      args: [...argv],
      options: OPTIONS,
      strict: true,
      allowPositionals: true,
    });
    return { values, positionals };
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
}

/** The string value of `--name`. */
export function str(flags: CliFlags, name: string): string | undefined {
  const v = flags.values[name];
  return typeof v === "string" ? v : undefined;
}

/** A finite, non-negative number flag. */
export function numFlag(flags: CliFlags, name: string): number | undefined {
  const v = str(flags, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === "" || !Number.isFinite(n) || n < 0) {
    throw new UsageError(`--${name} expects a non-negative number, got "${v}"`);
  }
  return n;
}

/** A non-negative integer flag. */
export function intFlag(flags: CliFlags, name: string): number | undefined {
  const v = str(flags, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === "" || !Number.isSafeInteger(n) || n < 0) {
    throw new UsageError(`--${name} expects a non-negative integer, got "${v}"`);
  }
  return n;
}

/** A positive number of seconds, as milliseconds. */
export function secondsFlag(flags: CliFlags, name: string): number | undefined {
  const v = str(flags, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === "" || !Number.isFinite(n) || n <= 0) {
    throw new UsageError(`--${name} expects a positive number of seconds, got "${v}"`);
  }
  return Math.round(n * 1000);
}

/** `--metric name=value` flags as a record. */
export function metricsFlag(flags: CliFlags): Record<string, number> {
  const out: Record<string, number> = {};
  const list = flags.values.metric;
  for (const item of Array.isArray(list) ? list : []) {
    const eq = item.indexOf("=");
    const value = Number(item.slice(eq + 1));
    if (eq <= 0 || item.slice(eq + 1).trim() === "" || !Number.isFinite(value)) {
      throw new UsageError(`--metric expects name=number, got "${item}"`);
    }
    out[item.slice(0, eq)] = value;
  }
  return out;
}

/** Where the client connects to and as whom. */
export interface ConnectionSettings {
  readonly statePath: string;
  readonly coordinator: string;
  readonly federation: string;
  readonly token: string;
  /** Absolute path of the token file, when the token came from one. */
  readonly tokenFile?: string;
  readonly natsUrl?: string;
  /** Absolute path of the CA certificate. */
  readonly tlsCa?: string;
  /** Absolute paths of this client's certificate and key (mutual TLS). */
  readonly tlsCert?: string;
  readonly tlsKey?: string;
  /** Tries per call (`--retries` + 1). */
  readonly attempts?: number;
}

/** The environment variables `tributary client` reads. */
export type CliEnv = Readonly<Record<string, string | undefined>>;

const nonEmpty = (...values: (string | undefined)[]) => values.find((v) => v !== undefined && v !== "");

async function readToken(file: string): Promise<string> {
  const token = (await readFile(file, "utf8")).trim();
  if (token === "") throw new UsageError(`token file ${file} is empty`);
  return token;
}

/** The state file path of `flags`. */
export function statePathOf(flags: CliFlags, env: CliEnv): string {
  return resolve(nonEmpty(str(flags, "state"), env.TRIBUTARY_CLIENT_STATE) ?? DEFAULT_STATE_FILE);
}

/** Resolves the connection from flags, environment and state (see the module comment). */
export async function resolveConnection(
  flags: CliFlags,
  env: CliEnv,
  state: ClientState,
  statePath: string,
): Promise<ConnectionSettings> {
  const federation = nonEmpty(str(flags, "federation"), env.TRIBUTARY_FEDERATION, state.federation);
  if (federation === undefined) {
    throw new UsageError(
      "no federation: pass --federation F (or set TRIBUTARY_FEDERATION, or run join first)",
    );
  }
  const flagFile = str(flags, "token-file");
  let token = nonEmpty(str(flags, "token"));
  let tokenFile: string | undefined;
  if (token === undefined && flagFile !== undefined) {
    tokenFile = resolve(flagFile);
    token = await readToken(tokenFile);
  }
  token ??= nonEmpty(env.TRIBUTARY_TOKEN, state.token);
  if (token === undefined && state.tokenFile !== undefined) {
    tokenFile = state.tokenFile;
    token = await readToken(tokenFile);
  }
  const natsUrl = nonEmpty(str(flags, "nats-url"), env.TRIBUTARY_NATS_URL, state.natsUrl);
  const pathOf = (flag: string, envName: string, saved: string | undefined) => {
    const given = nonEmpty(str(flags, flag), env[envName]);
    return given !== undefined ? resolve(given) : saved;
  };
  const tlsCa = pathOf("tls-ca", "TRIBUTARY_TLS_CA", state.tlsCa);
  const tlsCert = pathOf("tls-cert", "TRIBUTARY_TLS_CERT", state.tlsCert);
  const tlsKey = pathOf("tls-key", "TRIBUTARY_TLS_KEY", state.tlsKey);
  if ((tlsCert === undefined) !== (tlsKey === undefined)) {
    throw new UsageError("--tls-cert and --tls-key go together: pass both (or neither)");
  }
  // With a client certificate the token may be left out: the certificate identifies the client.
  if (token === undefined && tlsCert === undefined) {
    throw new UsageError(
      "no token: pass --token-file FILE or --token T (or set TRIBUTARY_TOKEN, or run join first), or a client certificate with --tls-cert/--tls-key",
    );
  }
  const retries = intFlag(flags, "retries");
  return {
    statePath,
    coordinator:
      nonEmpty(str(flags, "coordinator"), env.TRIBUTARY_COORDINATOR, state.coordinator) ?? "127.0.0.1:7070",
    federation,
    token: token ?? "",
    ...(tokenFile !== undefined ? { tokenFile } : {}),
    ...(natsUrl !== undefined ? { natsUrl } : {}),
    ...(tlsCa !== undefined ? { tlsCa } : {}),
    ...(tlsCert !== undefined && tlsKey !== undefined ? { tlsCert, tlsKey } : {}),
    ...(retries !== undefined ? { attempts: retries + 1 } : {}),
  };
}
