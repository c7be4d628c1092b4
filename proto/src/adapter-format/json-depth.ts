/**
 * Bounding JSON nesting before it is parsed: a client's `adapter_config.json`
 * or safetensors header nested thousands deep parses, but then overflows the
 * stack of whatever walks or re-serialises it. The scan is linear and
 * allocation-free; it does not validate the JSON (the parser does that).
 */

/** Deepest nesting an adapter's JSON documents may have. */
export const MAX_JSON_DEPTH = 32;

/**
 * The deepest object/array nesting of `text` (0 for a scalar), stopping as soon
 * as it exceeds `limit`.
 *
 * @example
 * jsonNestingDepth('{"a": [1, {"b": 2}]}'); // 3
 */
export function jsonNestingDepth(text: string, limit = Number.POSITIVE_INFINITY): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      depth++;
      if (depth > deepest) {
        deepest = depth;
        if (deepest > limit) return deepest;
      }
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return deepest;
}
