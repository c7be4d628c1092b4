/**
 * Counter-based, seedable pseudo-random numbers. A value depends only on
 * `(key, index)`, so a dense reference and a blocked implementation draw the
 * same numbers whatever order they visit elements in, and workers need no
 * shared state.
 */

/** murmur3's 32-bit finaliser: a bijective avalanche mix of a 32-bit integer. */
export function mix32(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** FNV-1a hash of a string, as an unsigned 32-bit integer. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * A stream key from its parts (seed, module name, client index, …).
 *
 * @example
 * const key = streamKey(42, "model.layers.0.q_proj", 3);
 * const u = uniformAt(key, 17); // in [0, 1)
 */
export function streamKey(seed: number, ...parts: (number | string)[]): number {
  let h = mix32((seed >>> 0) ^ 0x9e3779b9);
  for (const p of parts) {
    const v = typeof p === "string" ? hashString(p) : p >>> 0;
    h = mix32((h ^ v) + 0x7f4a7c15 + (h << 6) + (h >>> 2));
  }
  return h;
}

/** Uniform in `[0, 1)` for element `index` (a non-negative integer < 2^53) of stream `key`. */
export function uniformAt(key: number, index: number): number {
  const lo = index >>> 0;
  const hi = Math.floor(index / 4294967296) >>> 0;
  const h = mix32(mix32(key ^ lo) + Math.imul(hi ^ 0x632be5ab, 0x9e3779b1));
  return h / 4294967296;
}

/** Standard normal for element `index` of stream `key` (Box–Muller on two uniforms). */
export function normalAt(key: number, index: number): number {
  const u1 = uniformAt(key, 2 * index);
  const u2 = uniformAt(key, 2 * index + 1);
  return Math.sqrt(-2 * Math.log(1 - u1)) * Math.cos(2 * Math.PI * u2);
}
