import type { Matrix } from "ml-matrix";
import type { ModuleGroup } from "../types.ts";
import { denseTaskVectors, weightedSum } from "./task-vectors.ts";

/** Result of {@link taskArithmeticDense}. */
export interface TaskArithmeticDenseResult {
  /** `M = λ Σ Θ_i`. */
  readonly merged: Matrix;
}

/** Task arithmetic (Ilharco et al.): `M = λ Σ_i Θ_i`; `lambda` defaults to 1. */
export function taskArithmeticDense(module: ModuleGroup, lambda = 1): TaskArithmeticDenseResult {
  const thetas = denseTaskVectors(module);
  return {
    merged: weightedSum(
      thetas,
      thetas.map(() => lambda),
    ),
  };
}
