/**
 * Rank-`r` truncated SVD of `M + N`: `M = Σ_j c_j b_j a_j` a stack's
 * combination, seen only through its products (never built), and `N` a
 * dense matrix (the Gaussian noise of central DP). The block Krylov
 * iteration takes `(M + N) Y = M Y + N Y` and `(M + N)ᵀ X = Mᵀ X + Nᵀ X`;
 * `N`'s products run on the device with `N` resident. Dense meaning:
 * `B A = U_r Σ_r V_rᵀ` of `M + N`.
 */
import { columnCoefficients, type FactorStack } from "../factor-stack.ts";
import { type F32Mat, resident, transposeF32 } from "../kernels/device-matmul.ts";
import { combinationProducts } from "../stack-products.ts";
import { crossGram } from "./ritz-iteration.ts";
import { iterateProducts, normBound2, type Truncation, type TruncationOptions } from "./truncated-svd.ts";

function addInto(x: F32Mat, y: F32Mat): F32Mat {
  for (let i = 0; i < x.data.length; i++) x.data[i] += y.data[i];
  return x;
}

/**
 * The rank-`rank` truncation of `M + noise` (see the module comment).
 *
 * @example
 * const t = truncateNoisyStack(stack, coeffs, gaussianNoise(key, name, dOut, dIn, sigma), 16);
 */
export function truncateNoisyStack(
  stack: FactorStack,
  coeffs: ArrayLike<number>,
  noise: F32Mat,
  rank: number,
  opts: TruncationOptions = {},
): Truncation {
  const { dOut, dIn } = stack;
  if (noise.rows !== dOut || noise.cols !== dIn) {
    throw new RangeError(`${stack.name}: ${noise.rows}×${noise.cols} noise for a ${dOut}×${dIn} module`);
  }
  const colCoef = columnCoefficients(stack, coeffs);
  const target = Math.min(rank, dOut, dIn);
  let noise2 = 0;
  for (let i = 0; i < noise.data.length; i++) noise2 += noise.data[i] * noise.data[i];
  // ‖M + N‖ ≤ ‖M‖ + ‖N‖: it only stops the iteration.
  const bound = (Math.sqrt(stack.width === 0 ? 0 : normBound2(stack, colCoef)) + Math.sqrt(noise2)) ** 2;
  const ops = combinationProducts(stack, colCoef);
  const n = resident(noise);
  const nt = resident(transposeF32(noise));
  try {
    const t = iterateProducts(
      {
        dOut,
        dIn,
        timesWithGram: (y) => {
          const product = stack.width === 0 ? n.times(y) : addInto(ops.times(y), n.times(y));
          return { product, gram: crossGram(product, product) };
        },
        timesT: (x) => {
          const fromNoise = nt.times(x);
          if (stack.width === 0) return fromNoise;
          return addInto(ops.timesT(x), fromNoise);
        },
      },
      target,
      opts,
      `${stack.name}+noise`,
      bound,
    );
    return { ...t, norm2: null, residual: null, solver: "noisy-stream" };
  } finally {
    ops.dispose();
    n.dispose();
    nt.dispose();
  }
}
