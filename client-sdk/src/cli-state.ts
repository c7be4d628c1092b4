/**
 * The `tributary client` state file (default `.tributary/client.json`):
 * what `join` was given, so later commands need no flags, plus the round this
 * client last submitted to. It is written atomically with mode 0600, since it
 * may hold the token (only when the token was not given as a file).
 */
import { randomBytes } from "node:crypto";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { dirname } from "node:path";

/** Default state file, relative to the working directory. */
export const DEFAULT_STATE_FILE = ".tributary/client.json";

/** Contents of the state file. */
export interface ClientState {
  readonly coordinator?: string;
  readonly federation?: string;
  readonly clientId?: string;
  /** Absolute path of the token file, when the token was given as one. */
  readonly tokenFile?: string;
  /** The token itself, when it was not given as a file. */
  readonly token?: string;
  readonly natsUrl?: string;
  /** Absolute path of the CA certificate. */
  readonly tlsCa?: string;
  /** Absolute paths of this client's certificate and key (mutual TLS). */
  readonly tlsCert?: string;
  readonly tlsKey?: string;
  /** The round of this client's last acknowledged update. */
  readonly lastSubmittedRound?: number;
  /** The rank of that update's adapter (what `wait` and `fetch` receive the merged update at). */
  readonly lastSubmittedRank?: number;
  /** Updates this client sent under local DP (for its ε), by noise multiplier. */
  readonly localDp?: Readonly<Record<string, number>>;
}

/** Reads the state file; `{}` when it does not exist. */
export async function loadState(path: string): Promise<ClientState> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw err;
  }
  const doc: unknown = JSON.parse(text);
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    throw new Error(`${path}: not a tributary client state file (expected a JSON object)`);
  }
  return doc as ClientState;
}

/** Writes the state file atomically (temp file + rename), mode 0600. */
export async function saveState(path: string, state: ClientState): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${randomBytes(6).toString("hex")}.tmp`;
  await writeFile(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  await rename(tmp, path);
}
