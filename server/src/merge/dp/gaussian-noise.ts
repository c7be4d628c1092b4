/**
 * The noise of central DP: a module's `rows × cols` matrix of i.i.d.
 * Gaussian entries, drawn by `@tributary/protocol`'s CSPRNG
 * (`gaussianFloats`) from the round's key and the module's name, so each
 * module's noise is its own, the same for the same key (`--seed`,
 * `reproducible`), and unpredictable without it.
 */
import { gaussianFloats } from "@tributary/protocol";
import { type F32Mat, f32 } from "../kernels/device-matmul.ts";

/**
 * A `rows × cols` matrix of N(0, `std`²) entries for module `module` under
 * `noiseKey` (64 hex digits).
 *
 * @example
 * const n = gaussianNoise("ab".repeat(32), "model.layers.0.self_attn.q_proj", 4096, 4096, 0.01);
 */
export function gaussianNoise(
  noiseKey: string,
  module: string,
  rows: number,
  cols: number,
  std: number,
): F32Mat {
  return f32(rows, cols, gaussianFloats(noiseKey, module, rows * cols, std));
}
