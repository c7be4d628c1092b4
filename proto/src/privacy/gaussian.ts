/**
 * Gaussian noise for differential privacy, central (the coordinator) and
 * local (the SDKs): i.i.d. N(0, std²) values from a cryptographically secure
 * stream — AES-256 in counter mode keyed by `sha256(key ‖ 0x00 ‖ label)` —
 * turned into Gaussians by Box–Muller on 32-bit uniforms. The same key and
 * label give the same values; without the key they are unpredictable.
 */
import { createCipheriv, createHash, randomBytes } from "node:crypto";

/** Random values drawn per block (bounded scratch). */
const BLOCK_VALUES = 1 << 18;

/** A fresh secret key for {@link gaussianFloats}: 64 hex digits from the operating system. */
export function newNoiseKey(): string {
  return randomBytes(32).toString("hex");
}

/**
 * `count` values of N(0, `std`²) for `label` under `key` (64 hex digits).
 *
 * @example
 * const noise = gaussianFloats(newNoiseKey(), "base_model.model.layers.0.q_proj.lora_A.weight", 4096 * 16, 0.01);
 */
export function gaussianFloats(key: string, label: string, count: number, std: number): Float32Array {
  if (!/^[0-9a-f]{64}$/.test(key)) throw new RangeError("noise key must be 64 lowercase hex digits");
  const derived = createHash("sha256")
    .update(Buffer.from(key, "hex"))
    .update(Buffer.from([0]))
    .update(label, "utf8")
    .digest();
  const cipher = createCipheriv("aes-256-ctr", derived, Buffer.alloc(16));
  const out = new Float32Array(count);
  const zeros = Buffer.alloc(Math.min(count + (count % 2), BLOCK_VALUES) * 4);
  let at = 0;
  while (at < count) {
    const pairs = Math.min(zeros.length / 8, Math.ceil((count - at) / 2));
    const bytes = cipher.update(zeros.subarray(0, pairs * 8));
    const words = new Uint32Array(bytes.buffer, bytes.byteOffset, pairs * 2);
    for (let p = 0; p < pairs; p++) {
      // u1 in (0, 1], u2 in [0, 1): log(u1) is finite.
      const u1 = (words[2 * p] + 1) / 4294967296;
      const u2 = words[2 * p + 1] / 4294967296;
      const r = std * Math.sqrt(-2 * Math.log(u1));
      out[at++] = r * Math.cos(2 * Math.PI * u2);
      if (at < count) out[at++] = r * Math.sin(2 * Math.PI * u2);
    }
  }
  return out;
}
