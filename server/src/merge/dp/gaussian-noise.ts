/**
 * The noise of central DP: i.i.d. Gaussian entries from a cryptographically
 * secure stream, AES-256 in counter mode keyed by
 * `sha256(noiseKey ‖ 0x00 ‖ module name)`, so each module's noise is its
 * own, the same for the same key (`--seed`, `--reproducible`), and
 * unpredictable without it. Box–Muller on 32-bit uniforms, generated in row
 * blocks straight into the module's noise matrix.
 */
import { createCipheriv, createHash } from "node:crypto";
import { type F32Mat, f32 } from "../kernels/device-matmul.ts";

/** Rows drawn per block (bounded scratch: `rows × cols × 8` random bytes). */
const BLOCK_VALUES = 1 << 18;

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
  if (!/^[0-9a-f]{64}$/.test(noiseKey)) throw new RangeError("noise key must be 64 lowercase hex digits");
  const key = createHash("sha256")
    .update(Buffer.from(noiseKey, "hex"))
    .update(Buffer.from([0]))
    .update(module, "utf8")
    .digest();
  const cipher = createCipheriv("aes-256-ctr", key, Buffer.alloc(16));
  const out = new Float32Array(rows * cols);
  const zeros = Buffer.alloc(Math.min(out.length + (out.length % 2), BLOCK_VALUES) * 4);
  let at = 0;
  while (at < out.length) {
    const pairs = Math.min(zeros.length / 8, Math.ceil((out.length - at) / 2));
    const bytes = cipher.update(zeros.subarray(0, pairs * 8));
    const words = new Uint32Array(bytes.buffer, bytes.byteOffset, pairs * 2);
    for (let p = 0; p < pairs; p++) {
      // u1 in (0, 1], u2 in [0, 1): log(u1) is finite.
      const u1 = (words[2 * p] + 1) / 4294967296;
      const u2 = words[2 * p + 1] / 4294967296;
      const r = std * Math.sqrt(-2 * Math.log(u1));
      out[at++] = r * Math.cos(2 * Math.PI * u2);
      if (at < out.length) out[at++] = r * Math.sin(2 * Math.PI * u2);
    }
  }
  return f32(rows, cols, out);
}
