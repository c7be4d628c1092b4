import { Matrix, pseudoInverse } from "ml-matrix";
import { normalAt, streamKey } from "../random.ts";
import type { ModuleGroup } from "../types.ts";
import { fromObjective, fromWeights } from "./from-dense.ts";
import { denseTaskVectors, frob2, weightedSum } from "./task-vectors.ts";

/** Options of {@link alsDense}. */
export interface AlsDenseOptions {
  /** FroM norm exponent `k ≥ 0`. */
  readonly k: number;
  /** Rank `r ≥ 1` of the merged factors. */
  readonly rank: number;
  /** Standard deviation `σ` of the initial `A ~ N(0, σ²)`. */
  readonly sigma: number;
  /** Maximum number of iterations (`iters` in Algorithm 1). */
  readonly iters: number;
  /** Seed of the initial `A`. */
  readonly seed: number;
  /** Name mixed into the init stream; default `module.name`. */
  readonly moduleName?: string;
  /**
   * Relative-improvement stop: after an improving iteration, stop when
   * `min_loss_prev − loss ≤ tol · min_loss_prev`. Default 0 (disabled).
   */
  readonly tol?: number;
}

/** Result of {@link alsDense}. */
export interface AlsDenseResult {
  /** Best `B` (`dOut × r`). */
  readonly b: Matrix;
  /** Best `A` (`r × dIn`). */
  readonly a: Matrix;
  /** Eq. 6 with normalised weights at the best `(A, B)`: `Σ ŵ_i ‖BA − Θ_i‖²_F`. */
  readonly loss: number;
  /** Iterations executed, including the one that triggered a stop. */
  readonly iterations: number;
  /** The loss of every executed iteration, in order (the last may be the one that broke). */
  readonly losses: number[];
  /** `ŵ`. */
  readonly weights: number[];
}

/**
 * The initial `A` of {@link alsDense}: `A[j][c] = σ · normalAt(streamKey(seed,
 * moduleName, "als-init"), j · dIn + c)` (`r × dIn`), i.e. `A ~ N(0, σ²)`
 * (FroM Algorithm 1, line 1) drawn reproducibly.
 */
export function alsInitialA(
  rank: number,
  dIn: number,
  sigma: number,
  seed: number,
  moduleName: string,
): Matrix {
  const key = streamKey(seed, moduleName, "als-init");
  const a = new Matrix(rank, dIn);
  for (let j = 0; j < rank; j++) {
    for (let c = 0; c < dIn; c++) a.set(j, c, sigma * normalAt(key, j * dIn + c));
  }
  return a;
}

/**
 * FroM's alternating optimisation (papers/FroM.txt Algorithm 1), literally and
 * densely, with the normalised weights `ŵ`:
 * - Eq. 7: `B = (Σ ŵ_i Θ_i Aᵀ)(Σ ŵ_i A Aᵀ)^†`
 * - Eq. 8: `A = (Σ ŵ_i BᵀB)^†(Σ ŵ_i Bᵀ Θ_i)`
 * - Eq. 6: `loss = Σ ŵ_i ‖BA − Θ_i‖²_F`; early stopping: if `loss < min_loss`
 *   keep `(A, B)` as best, else break (plus the optional `tol` stop).
 *
 * `†` is ml-matrix's SVD pseudo-inverse (relative cutoff `ε · max(m, n) · σ_max`).
 */
export function alsDense(module: ModuleGroup, opts: AlsDenseOptions): AlsDenseResult {
  const { rank, iters, sigma } = opts;
  if (!Number.isInteger(rank) || rank < 1)
    throw new Error(`als: rank must be a positive integer, got ${rank}`);
  if (!Number.isInteger(iters) || iters < 1)
    throw new Error(`als: iters must be a positive integer, got ${iters}`);
  const tol = opts.tol ?? 0;
  const thetas = denseTaskVectors(module);
  const weights = fromWeights(
    thetas.map((t) => Math.sqrt(frob2(t))),
    opts.k,
  );
  let a = alsInitialA(rank, module.dIn, sigma, opts.seed, opts.moduleName ?? module.name);
  let b = new Matrix(module.dOut, rank);
  let best = { a, b };
  let minLoss = Number.POSITIVE_INFINITY;
  const losses: number[] = [];
  let iterations = 0;
  for (let it = 0; it < iters; it++) {
    iterations++;
    // Eq. 7.
    const thetaAt = weightedSum(
      thetas.map((t) => t.mmul(a.transpose())),
      weights,
    );
    const aat = weightedSum(
      thetas.map(() => a.mmul(a.transpose())),
      weights,
    );
    b = thetaAt.mmul(pseudoInverse(aat));
    // Eq. 8.
    const btb = weightedSum(
      thetas.map(() => b.transpose().mmul(b)),
      weights,
    );
    const btTheta = weightedSum(
      thetas.map((t) => b.transpose().mmul(t)),
      weights,
    );
    a = pseudoInverse(btb).mmul(btTheta);
    // Eq. 6 and early stopping.
    const loss = fromObjective(b.mmul(a), thetas, weights);
    losses.push(loss);
    if (loss < minLoss) {
      const prev = minLoss;
      minLoss = loss;
      best = { a, b };
      if (tol > 0 && Number.isFinite(prev) && prev - loss <= tol * prev) break;
    } else {
      break;
    }
  }
  return { b: best.b, a: best.a, loss: minLoss, iterations, losses, weights };
}
