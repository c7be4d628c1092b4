import { Matrix } from "ml-matrix";
import { streamKey, uniformAt } from "../random.ts";
import type { ModuleGroup } from "../types.ts";
import { denseTaskVectors, weightedSum } from "./task-vectors.ts";

/** Options of {@link dareDense}. */
export interface DareDenseOptions {
  /** Drop probability `p ∈ [0, 1)`. */
  readonly p: number;
  /** Seed of the drop masks. */
  readonly seed: number;
  /** Name mixed into the mask streams; default `module.name`. */
  readonly moduleName?: string;
  /** Combine the rescaled task vectors by `mean` (default) or `sum`. */
  readonly combine?: "mean" | "sum";
  /** Final multiplier `λ`; default 1. */
  readonly lambda?: number;
}

/** Result of {@link dareDense}. */
export interface DareDenseResult {
  /** `λ · combine_i(Θ̃_i)`. */
  readonly merged: Matrix;
  /** The dropped-and-rescaled task vectors `Θ̃_i`. */
  readonly rescaled: Matrix[];
}

/**
 * DARE's drop-and-rescale of one task vector (Yu et al. 2024): element
 * `e = row · dIn + col` is kept iff `uniformAt(streamKey(seed, moduleName, i), e) ≥ p`,
 * and kept entries are scaled by `1 / (1 − p)`.
 */
export function dareRescale(
  theta: Matrix,
  p: number,
  seed: number,
  moduleName: string,
  client: number,
): Matrix {
  if (!(p >= 0 && p < 1)) throw new Error(`dare: p must be in [0, 1), got ${p}`);
  const key = streamKey(seed, moduleName, client);
  const out = Matrix.zeros(theta.rows, theta.columns);
  for (let row = 0; row < theta.rows; row++) {
    for (let col = 0; col < theta.columns; col++) {
      if (uniformAt(key, row * theta.columns + col) >= p) out.set(row, col, theta.get(row, col) / (1 - p));
    }
  }
  return out;
}

/**
 * DARE (Yu et al. 2024): {@link dareRescale} every `Θ_i`, then `λ · mean` (default)
 * or `λ · sum` of the rescaled task vectors.
 */
export function dareDense(module: ModuleGroup, opts: DareDenseOptions): DareDenseResult {
  const name = opts.moduleName ?? module.name;
  const rescaled = denseTaskVectors(module).map((t, i) => dareRescale(t, opts.p, opts.seed, name, i));
  const lambda = opts.lambda ?? 1;
  const each = (opts.combine ?? "mean") === "mean" ? lambda / rescaled.length : lambda;
  return {
    merged: weightedSum(
      rescaled,
      rescaled.map(() => each),
    ),
    rescaled,
  };
}
