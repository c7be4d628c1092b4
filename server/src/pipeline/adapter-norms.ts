/**
 * Each adapter's squared Frobenius norm over all its modules,
 * `Σ_modules ‖s·B·A‖²_F`, in float64 from the factors' Grams, read one module
 * at a time (what central DP clips; a round has them from intake already).
 */
import { clientNorm2 } from "../merge/grams.ts";
import type { LazyAdapter } from "../peft/index.ts";

/**
 * `‖Θ_i‖²_F` of each of `inputs` over the first input's modules.
 *
 * @example
 * const norms2 = await adapterNorms2(inputs);
 */
export async function adapterNorms2(inputs: readonly LazyAdapter[]): Promise<number[]> {
  const out = inputs.map(() => 0);
  for (const name of inputs[0]?.modules.keys() ?? []) {
    for (const [i, input] of inputs.entries()) {
      const m = await input.loadModule(name);
      out[i] += clientNorm2({ a: m.a, b: m.b, rank: m.rank, scaling: m.scaling }, m.dOut, m.dIn);
    }
  }
  return out;
}
