/**
 * V8's heap growing factor for a `tributary` process. V8 counts the bytes of
 * every ArrayBuffer allocated since its last full collection against the old
 * generation's limit, and sets that limit at about twice the live heap. A
 * coordinator receiving uploads allocates a fresh 1 MiB buffer per chunk
 * (grpc-js assembles each message into one), so with a live heap of ~22 MB
 * V8 ran a full mark of the whole heap for about every 13 MB received: 69
 * of them while 32 clients uploaded 873 MB, 2.3 s of CPU on V8's helper
 * threads, next to 3 s for all the work of a bare grpc-js server taking the
 * same bytes. Letting the limit grow to four times the live heap leaves
 * room for the chunks that are about to be collected young: 27 full
 * collections in the same upload, the coordinator's CPU over it 7.4 s →
 * 6.2 s (medians of five runs of `npm run bench -- round --clients 32`,
 * BENCHMARKS.md "A heap that grows 4×").
 * The cost is memory: peak RSS while merging, median 572 → 614 MB there
 * (with the receive windows too). The flag is process-wide, so the
 * content-check and merge threads get it too.
 */
import { setFlagsFromString } from "node:v8";

/** The heap growing percent a `tributary` process runs with: V8 lets the old generation grow to (1 + 300/100) = 4× its live size before a full collection. */
export const HEAP_GROWING_PERCENT = 300;

/** The V8 flag, as `node --v8-options` lists it. */
export const HEAP_GROWING_FLAG = "--heap-growing-percent";

/**
 * Sets V8's heap growing factor to {@link HEAP_GROWING_PERCENT} unless the
 * process was started with its own (`node --heap-growing-percent=N …`, which
 * then stands). V8 reads the factor at every full collection, so setting it
 * after start-up takes effect from the next one. Returns whether it set it.
 *
 * @example
 * if (io === processIo) tuneHeapGrowth();
 */
export function tuneHeapGrowth(
  execArgv: readonly string[] = process.execArgv,
  setFlags: (flags: string) => void = setFlagsFromString,
): boolean {
  // V8 takes its flags' words joined by - or by _.
  const own = execArgv
    .map((a) => a.replaceAll("_", "-"))
    .some((a) => a === HEAP_GROWING_FLAG || a.startsWith(`${HEAP_GROWING_FLAG}=`));
  if (own) return false;
  setFlags(`${HEAP_GROWING_FLAG}=${HEAP_GROWING_PERCENT}`);
  return true;
}
