/**
 * Adaptive clipping for central DP (Andrew, Thakkar, McMahan, Ramaswamy
 * 2021, "Differentially private learning with adaptive clipping", as
 * Flower's `…AdaptiveClipping` and TF Privacy's quantile query do it): the
 * clip norm follows a target quantile γ of the clients' update norms by a
 * geometric step on the noised fraction `b̃` of clients at or under it,
 * `C ← C · exp(−η (b̃ − γ))`. The count is released too, with Gaussian noise
 * `σ_b` (sensitivity ½ after centring), so the updates' noise multiplier is
 * raised to `z_Δ = (z⁻² − (2σ_b)⁻²)^(−1/2)`: the pair then costs exactly one
 * Gaussian mechanism of multiplier `z`, which the accountant charges.
 */
import { gaussianNoise } from "./gaussian-noise.ts";

/**
 * The updates' noise multiplier `z_Δ` when the count's noise is `σ_b`, for
 * a total of `z` (0 stays 0). Throws when `2σ_b ≤ z` (no `z_Δ` exists).
 *
 * @example
 * updatesNoiseMultiplier(1, 2); // 1 / √(1 − 1/16) ≈ 1.0328
 */
export function updatesNoiseMultiplier(z: number, clippedCountStddev: number): number {
  if (z === 0) return 0;
  const rest = z ** -2 - (2 * clippedCountStddev) ** -2;
  if (!(rest > 0)) {
    throw new RangeError(
      `the count's noise ${clippedCountStddev} must exceed noise_multiplier / 2 = ${z / 2}`,
    );
  }
  return rest ** -0.5;
}

/**
 * `b̃`: the fraction of `norms` at or under `clipNorm`, with N(0, σ_b²)
 * noise on the count drawn from `noiseKey` (the round's key).
 */
export function noisyUnclippedFraction(
  norms: readonly number[],
  clipNorm: number,
  clippedCountStddev: number,
  noiseKey: string,
): number {
  const count = norms.filter((n) => n <= clipNorm).length;
  const noise = gaussianNoise(noiseKey, "\u0000unclipped-count", 1, 1, clippedCountStddev).data[0];
  return (count + noise) / Math.max(1, norms.length);
}

/**
 * The next round's clip norm.
 *
 * @example
 * nextClipNorm(1, 0, { targetQuantile: 0.5, clipLr: 0.2 }); // e^{0.1}: every client was clipped, C grows
 */
export function nextClipNorm(
  clipNorm: number,
  unclippedFraction: number,
  a: { readonly targetQuantile: number; readonly clipLr: number },
): number {
  return clipNorm * Math.exp(-a.clipLr * (unclippedFraction - a.targetQuantile));
}
