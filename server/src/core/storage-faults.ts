/**
 * How the core reads the I/O faults a store may raise: Node system errors
 * carrying an errno `code`. One place decides which faults mean "disk full"
 * (answered `RESOURCE_EXHAUSTED`) and which are worth retrying.
 */
import { StorageFullError } from "./store-errors.ts";

/** Errno codes that mean the storage has no room left. */
const STORAGE_FULL = new Set(["ENOSPC", "EDQUOT"]);
/** I/O faults worth retrying: the disk may free up, the device may recover. */
const TRANSIENT = new Set([...STORAGE_FULL, "EIO", "EAGAIN", "EMFILE", "ENFILE", "EBUSY"]);

function errno(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/** Whether `err` says the disk (or the quota) is full: `ENOSPC`, `EDQUOT`, or an upload that would not fit. */
export function isStorageFull(err: unknown): boolean {
  if (err instanceof StorageFullError) return true;
  const code = errno(err);
  return code !== undefined && STORAGE_FULL.has(code);
}

/** Whether `err` is a transient I/O fault (disk full, I/O error, too many open files). */
export function isTransientFault(err: unknown): boolean {
  const code = errno(err);
  return code !== undefined && TRANSIENT.has(code);
}
