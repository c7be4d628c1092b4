/**
 * Synthetic adapter sets for benchmarks, generated module by module so a
 * benchmark's memory reflects the merge, not the fixture. Uniform entries of
 * unit variance from xorshift32: fast, deterministic.
 */
import { hashString, mix32 } from "../server/src/merge/random.ts";
import type { ClientLora, ModuleGroup } from "../server/src/merge/types.ts";

/** One module's shape in an adapter set. */
export interface ModuleShape {
  readonly name: string;
  readonly dIn: number;
  readonly dOut: number;
}

/** "Llama-3-8B q_proj+v_proj": 32 × q_proj (4096→4096) and 32 × v_proj (4096→1024). */
export function llama3QV(): ModuleShape[] {
  const out: ModuleShape[] = [];
  for (let l = 0; l < 32; l++) {
    out.push({ name: `model.layers.${l}.self_attn.q_proj`, dIn: 4096, dOut: 4096 });
    out.push({ name: `model.layers.${l}.self_attn.v_proj`, dIn: 4096, dOut: 1024 });
  }
  return out;
}

/** Fills `out` with uniform values of variance `scale²` (xorshift32 from `seed`). */
export function fillUniform(out: Float32Array, seed: number, scale: number): void {
  let x = seed | 0 || 0x12345678;
  const k = scale * Math.sqrt(3) * 2 ** -31; // uniform on [-√3, √3]·scale: unit variance
  for (let i = 0; i < out.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = (x | 0) * k;
  }
}

/**
 * Client factors of one module: `A ~ U(unit var)/√dIn`, `B ~ U(unit var)·0.01`
 * (trained LoRA B's are small), `lora_alpha = 2r` (scaling 2).
 */
export function syntheticModule(
  shape: ModuleShape,
  clients: number,
  rank: number,
  seed: number,
): ModuleGroup {
  const list: ClientLora[] = [];
  for (let i = 0; i < clients; i++) {
    const a = new Float32Array(rank * shape.dIn);
    const b = new Float32Array(shape.dOut * rank);
    const s = mix32(seed) ^ hashString(shape.name) ^ mix32(i + 1);
    fillUniform(a, s ^ 0x9e3779b9, 1 / Math.sqrt(shape.dIn));
    fillUniform(b, s ^ 0x7f4a7c15, 0.01);
    list.push({ a, b, rank, scaling: 2 });
  }
  return { name: shape.name, dIn: shape.dIn, dOut: shape.dOut, clients: list };
}
