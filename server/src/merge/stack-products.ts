/**
 * The four products of a stack that the product-only routes need —
 * `Q·Y`, `P·X`, `X·P`, `X·Q` — without building `P` or `Q` where the device
 * has in-place strided products (`gemmInto`, native BLAS): term by term,
 * `Q·Y` stacks the rows `A_t·Y`, `P·X = Σ_t s_t B_t X_t` accumulates, and
 * likewise for the products from the left. Elsewhere `P` and `Q` are built
 * and kept resident on the device for the repeated products.
 */
import { type FactorStack, weightedP } from "./factor-stack.ts";
import { type F32Mat, f32, gemm, resident, stridedGemm, transposeF32 } from "./kernels/device-matmul.ts";

/** Repeated products with a stack's `P` (`dOut × R`) and `Q` (`R × dIn`). */
export interface StackProducts {
  /** `Q · Y` (`R × l`). */
  timesQ(y: F32Mat): F32Mat;
  /** `P · X` (`dOut × l`), `X` being `R × l`. */
  timesP(x: F32Mat): F32Mat;
  /** `X · P` (`l × R`), `X` being `l × dOut`. */
  fromP(x: F32Mat): F32Mat;
  /** `X · Q` (`l × dIn`), `X` being `l × R`. */
  fromQ(x: F32Mat): F32Mat;
  dispose(): void;
}

/** The products of `stack` on this thread's device (see the module comment). */
export function stackProducts(stack: FactorStack): StackProducts {
  const ops = unchecked(stack);
  const { dOut, dIn, width: R } = stack;
  const checked =
    (what: string, ok: (m: F32Mat) => boolean, f: (m: F32Mat) => F32Mat) =>
    (m: F32Mat): F32Mat => {
      if (!ok(m)) throw new RangeError(`${stack.name}: ${what} of a ${m.rows}×${m.cols} block`);
      return f(m);
    };
  return {
    timesQ: checked("Q·Y", (y) => y.rows === dIn, ops.timesQ),
    timesP: checked("P·X", (x) => x.rows === R, ops.timesP),
    fromP: checked("X·P", (x) => x.cols === dOut, ops.fromP),
    fromQ: checked("X·Q", (x) => x.cols === R, ops.fromQ),
    dispose: () => ops.dispose(),
  };
}

function unchecked(stack: FactorStack): StackProducts {
  const into = stridedGemm();
  if (into === undefined) {
    const p = resident(stack.p);
    const q = resident(stack.q);
    return {
      timesQ: (y) => q.times(y),
      timesP: (x) => p.times(x),
      fromP: (x) => p.timesFrom(x),
      fromQ: (x) => q.timesFrom(x),
      dispose() {
        p.dispose();
        q.dispose();
      },
    };
  }
  const { dOut, dIn, width: R } = stack;
  return {
    timesQ(y) {
      const out = f32(R, y.cols);
      stack.eachTerm((t, off) => {
        const a = { data: t.a, offset: 0, ld: dIn };
        into(t.rank, y.cols, dIn, 1, a, { data: y.data, offset: 0, ld: y.cols }, 0, {
          data: out.data,
          offset: off * y.cols,
          ld: y.cols,
        });
      }, "a");
      return out;
    },
    timesP(x) {
      const out = f32(dOut, x.cols);
      let beta = 0;
      stack.eachTerm((t, off) => {
        if (t.rank === 0) return;
        const b = { data: t.b, offset: 0, ld: t.rank };
        const xs = { data: x.data, offset: off * x.cols, ld: x.cols };
        into(dOut, x.cols, t.rank, t.scale ?? 1, b, xs, beta, { data: out.data, offset: 0, ld: x.cols });
        beta = 1;
      }, "b");
      return out;
    },
    fromP(x) {
      const out = f32(x.rows, R);
      stack.eachTerm((t, off) => {
        const b = { data: t.b, offset: 0, ld: t.rank };
        into(x.rows, t.rank, dOut, t.scale ?? 1, { data: x.data, offset: 0, ld: dOut }, b, 0, {
          data: out.data,
          offset: off,
          ld: R,
        });
      }, "b");
      return out;
    },
    fromQ(x) {
      const out = f32(x.rows, dIn);
      let beta = 0;
      stack.eachTerm((t, off) => {
        if (t.rank === 0) return;
        const xs = { data: x.data, offset: off, ld: R };
        into(x.rows, dIn, t.rank, 1, xs, { data: t.a, offset: 0, ld: dIn }, beta, {
          data: out.data,
          offset: 0,
          ld: dIn,
        });
        beta = 1;
      }, "a");
      return out;
    },
    dispose() {},
  };
}

/**
 * `M = P · diag(c) · Q` (`dOut × dIn`), `c` one coefficient per stacked
 * column: on a strided device as `Σ_t c_t s_t B_t A_t` accumulated in place
 * (when `c` is constant over each term, as per-client coefficients are), else
 * through the built `P` and `Q`.
 */
export function stackCombination(stack: FactorStack, colCoef: Float64Array): F32Mat {
  const { dOut, dIn } = stack;
  const into = stridedGemm();
  const perTerm = termCoefficients(stack, colCoef);
  if (into === undefined || perTerm === undefined) return gemm(weightedP(stack, colCoef), stack.q);
  const out = f32(dOut, dIn);
  let beta = 0;
  let i = 0;
  stack.eachTerm((t) => {
    const alpha = perTerm[i++] * (t.scale ?? 1);
    if (t.rank === 0) return;
    const b = { data: t.b, offset: 0, ld: t.rank };
    into(dOut, dIn, t.rank, alpha, b, { data: t.a, offset: 0, ld: dIn }, beta, {
      data: out.data,
      offset: 0,
      ld: dIn,
    });
    beta = 1;
  });
  return out;
}

/** Each term's coefficient when `colCoef` is constant over every term's columns, else `undefined`. */
function termCoefficients(stack: FactorStack, colCoef: Float64Array): number[] | undefined {
  const out: number[] = [];
  let off = 0;
  for (const rank of stack.termRanks) {
    const c = colCoef[off] ?? 0;
    for (let j = 1; j < rank; j++) if (colCoef[off + j] !== c) return undefined;
    out.push(c);
    off += rank;
  }
  return out;
}

/** Repeated products with a stack's combination `M = P · diag(colCoef) · Q`. */
export interface CombinationProducts {
  /** `M · Y` (`dOut × l`). */
  times(y: F32Mat): F32Mat;
  /** `Mᵀ · X` (`dIn × l`), as `((Xᵀ P) D Q)ᵀ`: the thin blocks are transposed, never the factors. */
  timesT(x: F32Mat): F32Mat;
  dispose(): void;
}

/**
 * The products of `M = Σ_a colCoef[a] p_a q_a` through {@link stackProducts}
 * (`M` is never built).
 *
 * @example
 * const m = combinationProducts(stack, colCoef);
 * const my = m.times(y);
 */
export function combinationProducts(stack: FactorStack, colCoef: Float64Array): CombinationProducts {
  const ops = stackProducts(stack);
  /** Multiplies row `a` of an `R × l` block by `colCoef[a]`, in place. */
  const scaleRows = (z: F32Mat): F32Mat => {
    for (let a = 0; a < z.rows; a++) {
      const c = colCoef[a];
      for (let j = 0; j < z.cols; j++) z.data[a * z.cols + j] *= c;
    }
    return z;
  };
  /** Multiplies column `a` of an `l × R` block by `colCoef[a]`, in place. */
  const scaleCols = (z: F32Mat): F32Mat => {
    for (let i = 0; i < z.rows; i++) for (let a = 0; a < z.cols; a++) z.data[i * z.cols + a] *= colCoef[a];
    return z;
  };
  return {
    times: (y) => ops.timesP(scaleRows(ops.timesQ(y))),
    timesT: (x) => transposeF32(ops.fromQ(scaleCols(ops.fromP(transposeF32(x))))),
    dispose: () => ops.dispose(),
  };
}
