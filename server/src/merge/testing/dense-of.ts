/** Dense views of merged results for comparisons in tests. */
import type { MergedLora } from "../types.ts";

/** `b · a` of a merged module as a float64 row-major `dOut × dIn` array. */
export function denseOfMerged(m: MergedLora, dOut: number, dIn: number): Float64Array {
  const out = new Float64Array(dOut * dIn);
  for (let i = 0; i < dOut; i++) {
    for (let k = 0; k < m.rank; k++) {
      const v = m.b[i * m.rank + k];
      if (v === 0) continue;
      for (let j = 0; j < dIn; j++) out[i * dIn + j] += v * m.a[k * dIn + j];
    }
  }
  return out;
}
