/**
 * Clipping for central DP: each client's whole update `Θ_i` (every module,
 * `‖Θ_i‖²_F = Σ_modules ‖s B A‖²_F`) scaled by `min(1, C / ‖Θ_i‖_F)`, so no
 * client moves the uniform mean by more than `C / m`. In factored form the
 * factor multiplies the client's `B`s (here: its merge coefficient).
 */

/**
 * Each client's clip factor `min(1, clipNorm / ‖Θ_i‖_F)` from its squared
 * whole-adapter norm (a zero update keeps factor 1).
 *
 * @example
 * clipFactors([4, 0.25], 1); // [0.5, 1]
 */
export function clipFactors(norms2: readonly number[], clipNorm: number): number[] {
  return norms2.map((n2) => {
    const norm = Math.sqrt(Math.max(0, n2));
    return norm > clipNorm ? clipNorm / norm : 1;
  });
}
