/**
 * Rényi differential privacy of the (Poisson-)subsampled Gaussian mechanism
 * and its conversion to (ε, δ), as Opacus's `RDPAccountant` computes them
 * (Mironov, Talwar, Zhang 2019, "Rényi Differential Privacy of the Sampled
 * Gaussian Mechanism", §3.3, for `log A_α` at integer and fractional orders;
 * Balle et al. 2020, Theorem 21, for the conversion), at Opacus's orders.
 * A round of a federation with central DP is one step: sampling rate
 * `q` = cohort / enrolled clients, noise multiplier `z` = σ / sensitivity.
 */
import { logAdd, logErfc, logSub } from "./log-math.ts";

/** Opacus's default RDP orders: 1.1, 1.2, …, 10.9, then 12, 13, …, 63. */
export const DEFAULT_ORDERS: readonly number[] = [
  ...Array.from({ length: 99 }, (_, x) => 1 + (x + 1) / 10),
  ...Array.from({ length: 52 }, (_, k) => 12 + k),
];

/** `log A_α` for integer `α`: the binomial sum of §3.3. */
function logAInt(q: number, z: number, alpha: number): number {
  let logA = Number.NEGATIVE_INFINITY;
  let logBinom = 0; // log C(α, 0)
  for (let i = 0; i <= alpha; i++) {
    if (i > 0) logBinom += Math.log(alpha - i + 1) - Math.log(i);
    const s = logBinom + i * Math.log(q) + (alpha - i) * Math.log1p(-q) + (i * i - i) / (2 * z * z);
    logA = logAdd(logA, s);
  }
  return logA;
}

/** `log A_α` for fractional `α`: the two tails of §3.3, summed until their terms fall below e^-30. */
function logAFrac(q: number, z: number, alpha: number): number {
  let logA0 = Number.NEGATIVE_INFINITY;
  let logA1 = Number.NEGATIVE_INFINITY;
  const z0 = z * z * Math.log(1 / q - 1) + 0.5;
  const scale = Math.SQRT2 * z;
  let logAbsCoef = 0; // log |C(α, 0)|
  let positive = true;
  for (let i = 0; ; i++) {
    if (i > 0) {
      const f = (alpha - i + 1) / i; // C(α, i) = C(α, i − 1) · (α − i + 1) / i
      logAbsCoef += Math.log(Math.abs(f));
      if (f < 0) positive = !positive;
    }
    const j = alpha - i;
    const logT0 = logAbsCoef + i * Math.log(q) + j * Math.log1p(-q);
    const logT1 = logAbsCoef + j * Math.log(q) + i * Math.log1p(-q);
    const logE0 = Math.log(0.5) + logErfc((i - z0) / scale);
    const logE1 = Math.log(0.5) + logErfc((z0 - j) / scale);
    const logS0 = logT0 + (i * i - i) / (2 * z * z) + logE0;
    const logS1 = logT1 + (j * j - j) / (2 * z * z) + logE1;
    if (positive) {
      logA0 = logAdd(logA0, logS0);
      logA1 = logAdd(logA1, logS1);
    } else {
      logA0 = logSub(logA0, logS0);
      logA1 = logSub(logA1, logS1);
    }
    if (Math.max(logS0, logS1) < -30) break;
  }
  return logAdd(logA0, logA1);
}

/**
 * RDP of one step of the subsampled Gaussian mechanism at order `alpha`:
 * sampling rate `q` ∈ [0, 1], noise multiplier `z` ≥ 0. `Infinity` when
 * there is no privacy (`z` = 0).
 */
export function rdpOfStep(q: number, z: number, alpha: number): number {
  if (q === 0) return 0;
  if (z === 0) return Number.POSITIVE_INFINITY;
  if (q === 1) return alpha / (2 * z * z);
  if (!Number.isFinite(alpha)) return Number.POSITIVE_INFINITY;
  const logA = Number.isInteger(alpha) ? logAInt(q, z, alpha) : logAFrac(q, z, alpha);
  return logA / (alpha - 1);
}

/** One kind of step, repeated: `steps` rounds at sampling rate `q` and noise multiplier `z`. */
export interface MechanismSteps {
  readonly q: number;
  readonly noiseMultiplier: number;
  readonly steps: number;
}

/** The RDP at each of `orders` of the steps composed (RDP adds up over steps). */
export function composedRdp(
  history: readonly MechanismSteps[],
  orders: readonly number[] = DEFAULT_ORDERS,
): number[] {
  return orders.map((alpha) =>
    history.reduce((sum, h) => sum + h.steps * rdpOfStep(h.q, h.noiseMultiplier, alpha), 0),
  );
}

/** An (ε, δ) guarantee and the RDP order it came from. */
export interface PrivacySpent {
  readonly epsilon: number;
  readonly order: number;
}

/**
 * The smallest ε over `orders` for which RDP values `rdp` give (ε, `delta`)-DP
 * (Balle et al. 2020, Theorem 21): `ε = rdp − (log δ + log α)/(α − 1) + log((α − 1)/α)`.
 */
export function privacySpent(
  rdp: readonly number[],
  delta: number,
  orders: readonly number[] = DEFAULT_ORDERS,
): PrivacySpent {
  if (rdp.length !== orders.length)
    throw new RangeError(`${rdp.length} RDP values for ${orders.length} orders`);
  if (!(delta > 0 && delta < 1)) throw new RangeError(`delta must be in (0, 1), got ${delta}`);
  let best: PrivacySpent = { epsilon: Number.POSITIVE_INFINITY, order: Number.NaN };
  orders.forEach((alpha, k) => {
    const eps = rdp[k] - (Math.log(delta) + Math.log(alpha)) / (alpha - 1) + Math.log((alpha - 1) / alpha);
    if (!Number.isNaN(eps) && eps < best.epsilon) best = { epsilon: eps, order: alpha };
  });
  return best;
}

/**
 * ε after `rounds` rounds at sampling rate `q` and noise multiplier `z`, for `delta`.
 *
 * @example
 * epsilonOf({ q: 0.04, noiseMultiplier: 1.5, steps: 2250 }, 1e-5).epsilon; // ≈ 7.3291 (Opacus's test)
 */
export function epsilonOf(steps: MechanismSteps, delta: number): PrivacySpent {
  return privacySpent(composedRdp([steps]), delta);
}

/**
 * The smallest noise multiplier (to `precision`) whose ε after `steps`
 * rounds at rate `q` is at most `epsilon` for `delta`; `RangeError` when
 * even a noise multiplier of 2000 does not meet it.
 *
 * @example
 * noiseFor({ epsilon: 8, delta: 1e-5, q: 0.04, steps: 2250 }); // ≈ 1.416
 */
export function noiseFor(target: {
  readonly epsilon: number;
  readonly delta: number;
  readonly q: number;
  readonly steps: number;
  readonly precision?: number;
}): number {
  const eps = (z: number) =>
    epsilonOf({ q: target.q, noiseMultiplier: z, steps: target.steps }, target.delta).epsilon;
  let lo = 0;
  let hi = 1;
  while (eps(hi) > target.epsilon) {
    lo = hi;
    hi *= 2;
    if (hi > 2000) {
      throw new RangeError(
        `no noise multiplier up to 2000 gives ε ≤ ${target.epsilon} over ${target.steps} rounds at sampling rate ${target.q} (δ = ${target.delta})`,
      );
    }
  }
  const precision = target.precision ?? 1e-4;
  while (hi - lo > precision) {
    const mid = (lo + hi) / 2;
    if (eps(mid) > target.epsilon) lo = mid;
    else hi = mid;
  }
  return hi;
}
