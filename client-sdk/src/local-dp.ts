/**
 * Local differential privacy, for nodes that trust no server: before
 * upload, every value the adapter releases (every tensor of
 * `adapter_model.safetensors`, the LoRA factors `A` and `B` as stored) is
 * clipped as one vector to L2 norm `clipNorm` and given Gaussian noise of
 * standard deviation `noiseMultiplier · clipNorm` from a secret key, then
 * written back in its own dtype with the same header. Each such submission
 * is one Gaussian mechanism of multiplier `noiseMultiplier` on this node's
 * data; `localEpsilon` composes them with the same RDP accountant as the
 * coordinator (`@tributary/protocol`), sampling rate 1 (docs/privacy.md).
 */
import {
  composedRdp,
  decodeFloats,
  encodeFloats,
  gaussianFloats,
  isTensorDType,
  newNoiseKey,
  parseSafetensorsLayout,
  privacySpent,
  safetensorsHeaderLength,
} from "@tributary/protocol";
import type { AdapterFiles } from "./adapter-files.ts";
import { TributaryError } from "./errors.ts";

/** What local DP applies to an update. */
export interface LocalDpOptions {
  /** L2 norm every released value, taken as one vector, is clipped to (> 0). */
  readonly clipNorm: number;
  /** Noise standard deviation / `clipNorm` (≥ 0; 0 = clipping alone). */
  readonly noiseMultiplier: number;
}

/** What local DP did to one update. */
export interface LocalDpReport {
  /** The update's norm before clipping. */
  readonly norm: number;
  readonly clipped: boolean;
  /** The noise's standard deviation. */
  readonly sigma: number;
}

/**
 * `files` with local DP applied (see the module comment); `key` is the
 * noise's secret key (fresh by default; pass one only to reproduce a test).
 *
 * @example
 * const { files: privatized, report } = privatizeAdapter(files, { clipNorm: 1, noiseMultiplier: 1.1 });
 */
export function privatizeAdapter(
  files: AdapterFiles,
  opts: LocalDpOptions,
  key: string = newNoiseKey(),
): { readonly files: AdapterFiles; readonly report: LocalDpReport } {
  if (!(opts.clipNorm > 0 && Number.isFinite(opts.clipNorm)))
    throw new TributaryError("INVALID_ARGUMENT", `local DP: clipNorm must be > 0, got ${opts.clipNorm}`);
  if (!(opts.noiseMultiplier >= 0 && Number.isFinite(opts.noiseMultiplier)))
    throw new TributaryError(
      "INVALID_ARGUMENT",
      `local DP: noiseMultiplier must be ≥ 0, got ${opts.noiseMultiplier}`,
    );
  const bytes = files.safetensors;
  const n = safetensorsHeaderLength(bytes, bytes.length, "adapter_model.safetensors");
  const layout = parseSafetensorsLayout(bytes.subarray(8, 8 + n), bytes.length, "adapter_model.safetensors");
  const tensors = [...layout.tensors].map(([name, t]) => {
    if (!isTensorDType(t.dtype))
      throw new TributaryError(
        "INVALID_ARGUMENT",
        `local DP: tensor "${name}" is ${t.dtype}, expected F32, F16 or BF16`,
      );
    return {
      name,
      dtype: t.dtype,
      offset: t.offset,
      values: decodeFloats(bytes.subarray(t.offset, t.offset + t.byteLength), t.dtype),
    };
  });
  let norm2 = 0;
  for (const t of tensors) for (const v of t.values) norm2 += v * v;
  const norm = Math.sqrt(norm2);
  const factor = norm > opts.clipNorm ? opts.clipNorm / norm : 1;
  const sigma = opts.noiseMultiplier * opts.clipNorm;
  const out = new Uint8Array(bytes);
  for (const t of tensors) {
    const noise = sigma > 0 ? gaussianFloats(key, t.name, t.values.length, sigma) : undefined;
    const v = t.values;
    for (let i = 0; i < v.length; i++) v[i] = v[i] * factor + (noise?.[i] ?? 0);
    out.set(encodeFloats(v, t.dtype), t.offset);
  }
  return {
    files: { configJson: files.configJson, safetensors: out },
    report: { norm, clipped: factor < 1, sigma },
  };
}

/**
 * The ε this node has spent at `delta` after its updates under local DP:
 * `history` lists how many it sent at each noise multiplier (sampling rate
 * 1: every update is released), their RDP composed.
 *
 * @example
 * localEpsilon([{ noiseMultiplier: 1.1, submissions: 10 }], 1e-5);
 */
export function localEpsilon(
  history: readonly { readonly noiseMultiplier: number; readonly submissions: number }[],
  delta: number,
): number {
  const steps = history.filter((h) => h.submissions > 0);
  if (steps.length === 0) return 0;
  const rdp = composedRdp(
    steps.map((h) => ({ q: 1, noiseMultiplier: h.noiseMultiplier, steps: h.submissions })),
  );
  return privacySpent(rdp, delta).epsilon;
}
