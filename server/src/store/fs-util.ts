/**
 * Durable file-system helpers of the file store: fsynced directory creation
 * and atomic writes, full positioned reads and writes, streaming sha256.
 */
import { createHash } from "node:crypto";
import { type FileHandle, mkdir, open, rename, unlink } from "node:fs/promises";
import { join } from "node:path";
import { readAt } from "../peft/file-read.ts";
import { tempName } from "./paths.ts";

export { readAt };

/** The `code` of a Node system error (`ENOENT`, …), if it is one. */
export function errnoCode(err: unknown): string | undefined {
  return err instanceof Error && "code" in err && typeof err.code === "string" ? err.code : undefined;
}

/** Fsyncs a directory so entries created, renamed or removed in it survive a crash. */
export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } catch (err) {
    // Some platforms cannot fsync a directory; everything else is a real failure.
    if (errnoCode(err) !== "EINVAL" && errnoCode(err) !== "EISDIR" && errnoCode(err) !== "EPERM") throw err;
  } finally {
    await handle.close();
  }
}

/**
 * Creates `root/dirs[0]/dirs[1]/…` level by level, fsyncing the parent of
 * every directory it creates (so the new entries survive a crash), and
 * returns the full path. `root` must exist.
 */
export async function ensureDir(root: string, dirs: readonly string[]): Promise<string> {
  let parent = root;
  for (const d of dirs) {
    const path = join(parent, d);
    try {
      await mkdir(path, { mode: 0o700 });
      await syncDir(parent);
    } catch (err) {
      if (errnoCode(err) !== "EEXIST") throw err;
    }
    parent = path;
  }
  return parent;
}

/** Writes all of `bytes` at `position` (looping over short writes). */
export async function writeFully(handle: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done, position + done);
    done += bytesWritten;
  }
}

/** Hex sha256 of the first `size` bytes of a file, read in 1 MiB positioned reads. */
export async function hashFile(handle: FileHandle, size: number): Promise<string> {
  const hash = createHash("sha256");
  const buf = new Uint8Array(Math.min(size, 1 << 20) || 1);
  let position = 0;
  while (position < size) {
    const { bytesRead } = await handle.read(buf, 0, Math.min(buf.length, size - position), position);
    if (bytesRead === 0) break;
    hash.update(buf.subarray(0, bytesRead));
    position += bytesRead;
  }
  return hash.digest("hex");
}

/** Writes `dir/name` atomically: an fsynced temp file renamed over it, then the directory fsynced. */
export async function writeFileAtomic(dir: string, name: string, bytes: Uint8Array): Promise<void> {
  const temp = join(dir, tempName(name));
  const handle = await open(temp, "wx", 0o600);
  try {
    await writeFully(handle, bytes, 0);
    await handle.sync();
    await handle.close();
    await rename(temp, join(dir, name));
  } catch (err) {
    await handle.close().catch(() => undefined);
    await unlink(temp).catch(() => undefined);
    throw err;
  }
  await syncDir(dir);
}

/** Deletes a file; false if it did not exist. */
export async function unlinkIfExists(path: string): Promise<boolean> {
  try {
    await unlink(path);
    return true;
  } catch (err) {
    if (errnoCode(err) === "ENOENT") return false;
    throw err;
  }
}
