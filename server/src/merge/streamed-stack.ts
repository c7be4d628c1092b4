/**
 * A stack over a `ModuleSource`: its terms (`s_i B_i`, `A_i`, one per
 * client) are read from the source on every pass, one client at a time, so
 * only the product-only routes can use it (`stack-products.ts` on a device
 * with strided products) and its `P`, `Q` are never built: asking for them
 * is a programming error, thrown.
 */
import { MergeInputError } from "./errors.ts";
import type { FactorStack } from "./factor-stack.ts";
import type { F32Mat } from "./kernels/device-matmul.ts";
import type { ModuleGroup, ModuleSource } from "./types.ts";

/** A group held in memory, as a source (tests compare the two paths on it). */
export function groupSource(group: ModuleGroup): ModuleSource {
  return { ...group, read: (i, factor) => group.clients[i][factor] };
}

const EMPTY = new Float32Array(0);

/** The stack of `source`'s clients (see the module comment). */
export function streamedStack(source: ModuleSource): FactorStack {
  const termRanks = source.clients.map((c) => c.rank);
  const width = termRanks.reduce((s, r) => s + r, 0);
  const owner = new Int32Array(width);
  let off = 0;
  termRanks.forEach((r, i) => {
    owner.fill(i, off, off + r);
    off += r;
  });
  const never = (what: string): F32Mat => {
    throw new Error(
      `${source.name}: a streamed stack never builds ${what} (only product-only routes read it)`,
    );
  };
  return {
    name: source.name,
    dIn: source.dIn,
    dOut: source.dOut,
    width,
    clients: source.clients.length,
    owner,
    termRanks,
    eachTerm(fn, factors = "ab") {
      let at = 0;
      source.clients.forEach((c, i) => {
        const a = factors === "b" ? EMPTY : source.read(i, "a");
        const b = factors === "a" ? EMPTY : source.read(i, "b");
        if (
          (factors !== "b" && a.length !== c.rank * source.dIn) ||
          (factors !== "a" && b.length !== source.dOut * c.rank)
        ) {
          throw new MergeInputError(
            `${source.name}: client ${i} read ${factors === "b" ? "" : `${a.length} lora_A values`}${factors === "ab" ? " and " : ""}${factors === "a" ? "" : `${b.length} lora_B values`}, expected ${c.rank}×${source.dIn} and ${source.dOut}×${c.rank}`,
            source.name,
            i,
          );
        }
        fn({ client: i, rank: c.rank, a, b, scale: c.scaling }, at);
        at += c.rank;
      });
    },
    get p() {
      return never("P");
    },
    get pT() {
      return never("Pᵀ");
    },
    get q() {
      return never("Q");
    },
    get qT() {
      return never("Qᵀ");
    },
  };
}
