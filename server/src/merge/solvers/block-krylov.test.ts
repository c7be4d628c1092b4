import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { activate, loadableBackends } from "../../testing/backends.ts";
import { type F32Mat, f32, gemm, transposeF32 } from "../kernels/device-matmul.ts";
import { symEig } from "../linalg/index.ts";
import { normalAt, streamKey } from "../random.ts";
import { blockKrylov, type KrylovOperator } from "./block-krylov.ts";
import { ritzIterate } from "./ritz-iteration.ts";

function gaussian(rows: number, cols: number, seed: number): F32Mat {
  const key = streamKey(seed, "block-krylov-test");
  const data = new Float32Array(rows * cols);
  for (let i = 0; i < data.length; i++) data[i] = normalAt(key, i);
  return f32(rows, cols, data);
}

/** Orthonormal columns (`rows × cols`) by Gram–Schmidt in float64. */
function orthonormal(rows: number, cols: number, seed: number): Float64Array {
  const g = gaussian(rows, cols, seed);
  const q = Float64Array.from(g.data);
  for (let j = 0; j < cols; j++) {
    for (let pass = 0; pass < 2; pass++) {
      for (let p = 0; p < j; p++) {
        let dot = 0;
        for (let i = 0; i < rows; i++) dot += q[i * cols + p] * q[i * cols + j];
        for (let i = 0; i < rows; i++) q[i * cols + j] -= dot * q[i * cols + p];
      }
    }
    let n = 0;
    for (let i = 0; i < rows; i++) n += q[i * cols + j] ** 2;
    for (let i = 0; i < rows; i++) q[i * cols + j] /= Math.sqrt(n);
  }
  return q;
}

/** `M = U diag(σ) Vᵀ` (`dOut × dIn`) with the given singular values. */
function withSpectrum(dOut: number, dIn: number, sigma: readonly number[], seed: number): F32Mat {
  const k = sigma.length;
  const u = orthonormal(dOut, k, seed);
  const v = orthonormal(dIn, k, seed + 1);
  const m = new Float32Array(dOut * dIn);
  for (let i = 0; i < dOut; i++) {
    for (let c = 0; c < dIn; c++) {
      let s = 0;
      for (let j = 0; j < k; j++) s += u[i * k + j] * sigma[j] * v[c * k + j];
      m[i * dIn + c] = s;
    }
  }
  return f32(dOut, dIn, m);
}

/** `M` through its products, counting them. */
function operatorOf(m: F32Mat): KrylovOperator & { products: number } {
  const mt = transposeF32(m);
  const op = {
    dOut: m.rows,
    dIn: m.cols,
    products: 0,
    timesWithGram(z: F32Mat) {
      op.products++;
      const product = gemm(m, z);
      const g = gemm(transposeF32(product), product);
      return { product, gram: { rows: g.rows, cols: g.cols, data: Float64Array.from(g.data) } };
    },
    timesT(x: F32Mat) {
      op.products++;
      return gemm(mt, x);
    },
  };
  return op;
}

/** The top `k` eigenvalues of `MᵀM`, in float64. */
function topEigenvalues(m: F32Mat, k: number): number[] {
  const { rows, cols, data } = m;
  const g = new Float64Array(cols * cols);
  for (let i = 0; i < rows; i++) {
    for (let a = 0; a < cols; a++) {
      const x = data[i * cols + a];
      for (let b = 0; b < cols; b++) g[a * cols + b] += x * data[i * cols + b];
    }
  }
  return Array.from(symEig({ rows: cols, cols, data: g }).values.slice(0, k));
}

const options = { rank: 4, tol: 1e-7, maxIter: 200, rcond: 1e-10 };

for (const backend of await loadableBackends()) {
  describe(`block Krylov on ${backend}`, () => {
    before(() => activate(backend));

    // A slowly decaying spectrum: the gap after the 4th value is 2 %.
    const flat = Array.from({ length: 60 }, (_, j) => 10 * 0.98 ** j);
    const m = withSpectrum(70, 90, flat, 3);
    const want = topEigenvalues(m, 4);

    test("finds the top eigenpairs of MᵀM: values, orthonormal Ritz vectors, and M V", () => {
      const r = blockKrylov(operatorOf(m), gaussian(90, 8, 1), { ...options, maxBasis: 90 });
      assert.equal(r.values.length, 4);
      for (let j = 0; j < 4; j++) {
        assert.ok(Math.abs(r.values[j] - want[j]) <= 1e-4 * want[0], `σ²_${j}: ${r.values[j]} vs ${want[j]}`);
      }
      const vtv = gemm(transposeF32(r.v), r.v);
      for (let a = 0; a < 4; a++) {
        for (let b = 0; b < 4; b++) {
          assert.ok(Math.abs(vtv.data[a * 4 + b] - (a === b ? 1 : 0)) < 1e-4, `VᵀV[${a}][${b}]`);
        }
      }
      const mv = gemm(m, r.v);
      for (let i = 0; i < mv.data.length; i++) assert.ok(Math.abs(mv.data[i] - r.mv.data[i]) < 1e-3);
    });

    test("needs far fewer products than subspace iteration on the same flat spectrum and tolerance", () => {
      const op = operatorOf(m);
      const krylov = blockKrylov(op, gaussian(90, 8, 1), { ...options, maxBasis: 90 });
      const sub = operatorOf(m);
      const subspace = ritzIterate(
        (y) => {
          const first = sub.timesWithGram(y);
          const yy = gemm(transposeF32(y), y);
          return {
            wy: first.product,
            ty: sub.timesT(first.product),
            s: { rows: yy.rows, cols: yy.cols, data: Float64Array.from(yy.data) },
            h: first.gram,
          };
        },
        gaussian(90, 8, 1),
        options,
      );
      for (let j = 0; j < 4; j++)
        assert.ok(Math.abs(subspace.values[j] - krylov.values[j]) <= 1e-4 * want[0]);
      assert.ok(
        op.products * 2 <= sub.products,
        `block Krylov used ${op.products} products, subspace iteration ${sub.products}`,
      );
    });

    test("restarts from its Ritz vectors when the basis is full, and still converges", () => {
      const r = blockKrylov(operatorOf(m), gaussian(90, 8, 1), { ...options, maxBasis: 24 });
      for (let j = 0; j < 4; j++) {
        assert.ok(Math.abs(r.values[j] - want[j]) <= 1e-4 * want[0], `σ²_${j}: ${r.values[j]} vs ${want[j]}`);
      }
      assert.ok(r.iterations > 3, "the basis of 24 columns had to restart");
    });

    test("stops exactly once the basis holds an invariant subspace (M of rank 3 < the block)", () => {
      const low = withSpectrum(40, 30, [5, 3, 2], 9);
      const r = blockKrylov(operatorOf(low), gaussian(30, 8, 2), { ...options, maxBasis: 30 });
      assert.deepEqual(
        Array.from(r.values.slice(0, 3), (v) => Number(v.toFixed(3))),
        [25, 9, 4],
      );
      // Any further value is float32 rounding of the products.
      for (const v of r.values.slice(3)) assert.ok(v < 1e-5 * 25, `spurious σ² ${v}`);
      assert.ok(r.iterations <= 2, `${r.iterations} iterations`);
    });

    test("a zero operator gives no pairs", () => {
      const r = blockKrylov(operatorOf(f32(6, 5)), gaussian(5, 3, 4), { ...options, maxBasis: 5 });
      assert.equal(r.values.length, 0);
    });
  });
}
