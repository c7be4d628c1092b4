/**
 * One coordinator per data directory: a `LOCK` file holding the owner's pid,
 * created exclusively. A lock whose process is gone (killed, crashed) is
 * taken over. Single host only: pids mean nothing across machines.
 */
import { open, readFile, unlink } from "node:fs/promises";
import { resolve } from "node:path";
import { StoreLockedError } from "../core/store-errors.ts";
import { errnoCode } from "./fs-util.ts";

/** Data directories locked by this process. */
const held = new Set<string>();

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoCode(err) === "EPERM";
  }
}

/**
 * Takes the lock at `path` for this process; returns its release. Throws
 * `StoreLockedError` if a live process (or an open store of this one) holds it.
 */
export async function acquireLock(path: string): Promise<() => Promise<void>> {
  const key = resolve(path);
  if (held.has(key)) {
    throw new StoreLockedError(`${path}: the data directory is already open in this process`, process.pid);
  }
  for (let attempt = 0; ; attempt++) {
    try {
      const handle = await open(path, "wx", 0o600);
      await handle.writeFile(`${process.pid}\n`);
      await handle.close();
      break;
    } catch (err) {
      if (errnoCode(err) !== "EEXIST" || attempt > 0) throw err;
    }
    const pid = Number.parseInt(await readFile(path, "utf8").catch(() => ""), 10);
    if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
      throw new StoreLockedError(`${path}: the data directory is in use by process ${pid}`, pid);
    }
    await unlink(path).catch(() => undefined); // stale: its owner is gone
  }
  held.add(key);
  return async () => {
    held.delete(key);
    await unlink(path).catch(() => undefined);
  };
}
