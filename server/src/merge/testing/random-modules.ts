/**
 * Deterministic random LoRA modules for tests. Every value comes from
 * `normalAt(streamKey(seed, name, client, "A" | "B"), index)`, so a group is
 * fully determined by its options.
 */
import { normalAt, streamKey } from "../random.ts";
import type { ClientLora, ModuleGroup } from "../types.ts";

/** Options of {@link randomModuleGroup}. */
export interface RandomModuleGroupOptions {
  readonly seed: number;
  /** Module name (also mixed into the streams); default `"test.module"`. */
  readonly name?: string;
  readonly dIn: number;
  readonly dOut: number;
  /** One rank per client. */
  readonly ranks: readonly number[];
  /** Per-client PEFT scaling; default `2 / r_i` (PEFT `lora_alpha / r` with `lora_alpha = 2`). */
  readonly scalings?: readonly number[];
  /** Multiplies every `A` entry (so every `Θ_i`); default 1. */
  readonly scale?: number;
}

/**
 * A deterministic module group: `A_i[j][c] = scale · N(0,1) / √dIn`,
 * `B_i[row][j] = N(0,1)`, so `Θ_i = s_i B_i A_i` has entries of standard
 * deviation `scale · s_i · √(r_i / dIn)` (≈ 0.01–1 for typical shapes).
 */
export function randomModuleGroup(opts: RandomModuleGroupOptions): ModuleGroup {
  const { seed, dIn, dOut, ranks } = opts;
  const name = opts.name ?? "test.module";
  const scale = opts.scale ?? 1;
  if (opts.scalings !== undefined && opts.scalings.length !== ranks.length) {
    throw new Error(`randomModuleGroup: ${opts.scalings.length} scalings for ${ranks.length} clients`);
  }
  const clients = ranks.map((rank, i): ClientLora => {
    if (!Number.isInteger(rank) || rank < 1)
      throw new Error(`randomModuleGroup: client ${i} has rank ${rank}`);
    const keyA = streamKey(seed, name, i, "A");
    const keyB = streamKey(seed, name, i, "B");
    const a = new Float32Array(rank * dIn);
    for (let e = 0; e < a.length; e++) a[e] = (scale * normalAt(keyA, e)) / Math.sqrt(dIn);
    const b = new Float32Array(dOut * rank);
    for (let e = 0; e < b.length; e++) b[e] = normalAt(keyB, e);
    return { a, b, rank, scaling: opts.scalings?.[i] ?? 2 / rank };
  });
  return { name, dIn, dOut, clients };
}

/**
 * A client whose task vector is exactly the given dense `dOut × dIn` matrix:
 * `B = values` (`dOut × dIn`, rank `dIn`), `A = I`, scaling 1. Values are
 * stored as float32, so use exactly representable numbers for exact checks.
 */
export function denseClient(dOut: number, dIn: number, values: ArrayLike<number>): ClientLora {
  if (values.length !== dOut * dIn)
    throw new Error(`denseClient: ${values.length} values for ${dOut}×${dIn}`);
  const a = new Float32Array(dIn * dIn);
  for (let j = 0; j < dIn; j++) a[j * dIn + j] = 1;
  return { a, b: Float32Array.from(values), rank: dIn, scaling: 1 };
}

/** Deep copy of one client (fresh arrays). */
function copyClient(c: ClientLora): ClientLora {
  return { a: c.a.slice(), b: c.b.slice(), rank: c.rank, scaling: c.scaling };
}

/** `group` with a copy of client `i` appended. */
export function duplicateClient(group: ModuleGroup, i: number): ModuleGroup {
  const c = group.clients[i];
  if (c === undefined) throw new Error(`duplicateClient: no client ${i} (have ${group.clients.length})`);
  return { ...group, clients: [...group.clients, copyClient(c)] };
}

/**
 * `group` with a client appended whose `B` is all zeros (so `Θ = 0`) but whose
 * `A` is random and non-zero; its rank defaults to client 0's rank (or 1).
 */
export function withZeroClient(group: ModuleGroup, rank = group.clients[0]?.rank ?? 1): ModuleGroup {
  const key = streamKey(0, group.name, "zero-client");
  const a = new Float32Array(rank * group.dIn);
  for (let e = 0; e < a.length; e++) a[e] = normalAt(key, e) / Math.sqrt(group.dIn);
  const zero: ClientLora = { a, b: new Float32Array(group.dOut * rank), rank, scaling: 2 / rank };
  return { ...group, clients: [...group.clients, zero] };
}

/** Client `i`'s task vector `s_i B_i A_i`, row-major `dOut × dIn`, accumulated in float64. */
export function denseOf(group: ModuleGroup, i: number): Float64Array {
  const c = group.clients[i];
  if (c === undefined) throw new Error(`denseOf: no client ${i} (have ${group.clients.length})`);
  const { dOut, dIn } = group;
  const out = new Float64Array(dOut * dIn);
  for (let row = 0; row < dOut; row++) {
    for (let j = 0; j < c.rank; j++) {
      const bij = c.b[row * c.rank + j];
      for (let col = 0; col < dIn; col++) out[row * dIn + col] += bij * c.a[j * dIn + col];
    }
  }
  for (let e = 0; e < out.length; e++) out[e] *= c.scaling;
  return out;
}
