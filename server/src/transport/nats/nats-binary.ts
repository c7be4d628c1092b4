/** Locating the `nats-server` executable. */
import { accessSync, constants, statSync } from "node:fs";
import { delimiter, join } from "node:path";
import { NatsServerNotFoundError } from "./errors.ts";

/** Where to look for `nats-server`. */
export interface FindNatsServerOptions {
  /** Explicit path to the binary; when set, nothing else is searched. */
  readonly binary?: string;
  /** The `PATH` to search (default `process.env.PATH`). */
  readonly pathEnv?: string;
  /** Directories searched after `PATH` (default `/usr/sbin`, `/usr/local/bin`: Debian installs it in `/usr/sbin`). */
  readonly extraDirs?: readonly string[];
}

/** Directories searched after `PATH`. */
export const EXTRA_NATS_SERVER_DIRS: readonly string[] = ["/usr/sbin", "/usr/local/bin"];

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/**
 * Returns the path of the `nats-server` binary.
 *
 * @throws {NatsServerNotFoundError} when it is in none of the searched places.
 * @example
 * const binary = findNatsServer(); // "/usr/sbin/nats-server" on Debian
 */
export function findNatsServer(options: FindNatsServerOptions = {}): string {
  const explicit = options.binary ?? (process.env.TRIBUTARY_NATS_SERVER || undefined);
  if (explicit !== undefined) {
    if (isExecutable(explicit)) return explicit;
    throw new NatsServerNotFoundError([explicit]);
  }
  const pathDirs = (options.pathEnv ?? process.env.PATH ?? "").split(delimiter).filter((d) => d !== "");
  const dirs = [...new Set([...pathDirs, ...(options.extraDirs ?? EXTRA_NATS_SERVER_DIRS)])];
  for (const dir of dirs) {
    const candidate = join(dir, "nats-server");
    if (isExecutable(candidate)) return candidate;
  }
  throw new NatsServerNotFoundError(dirs);
}
