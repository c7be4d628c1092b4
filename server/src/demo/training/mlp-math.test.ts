import { after, describe, test } from "node:test";
import * as tf from "@tensorflow/tfjs-core";
import { selectBackend } from "../../compute/backend.ts";
import { normalAt, streamKey } from "../../merge/random.ts";
import { assertClose } from "../../merge/testing/assert-close.ts";
import { activate, loadableBackends } from "../../testing/backends.ts";
import { backward, crossEntropy, forward, type LayerTensors } from "./mlp-math.ts";

// A tiny MLP 5 → 4 → 3 with a rank-2 LoRA on both layers, batch of 6.
const DIMS = [5, 4, 3];
const RANK = 2;
const SCALING = 1.5;
const N = 6;
const LABELS = [0, 2, 1, 1, 0, 2];

/** Parameters as plain float64 arrays: per layer W, bias, A, B. */
type Params = { w: Float64Array; bias: Float64Array; a: Float64Array; b: Float64Array }[];

function randomParams(): Params {
  return DIMS.slice(1).map((dOut, l) => {
    const dIn = DIMS[l];
    const draw = (what: string, n: number, scale: number) =>
      Float64Array.from({ length: n }, (_, i) => scale * normalAt(streamKey(5, what, l), i));
    return {
      w: draw("w", dOut * dIn, 0.7),
      bias: draw("bias", dOut, 0.3),
      a: draw("a", RANK * dIn, 0.5),
      b: draw("b", dOut * RANK, 0.5),
    };
  });
}

const X = Float64Array.from({ length: N * DIMS[0] }, (_, i) => normalAt(streamKey(5, "x"), i));

/** Dense float64 reference: mean cross-entropy of `relu(h (W + s·B·A)ᵀ + b)` layers. */
function referenceLoss(p: Params): number {
  let total = 0;
  for (let s = 0; s < N; s++) {
    let h = Array.from(X.subarray(s * DIMS[0], (s + 1) * DIMS[0]));
    p.forEach((layer, l) => {
      const [dIn, dOut] = [DIMS[l], DIMS[l + 1]];
      const z = Array.from({ length: dOut }, (_, j) => {
        let acc = layer.bias[j];
        for (let i = 0; i < dIn; i++) {
          let delta = 0;
          for (let k = 0; k < RANK; k++) delta += layer.b[j * RANK + k] * layer.a[k * dIn + i];
          acc += (layer.w[j * dIn + i] + SCALING * delta) * h[i];
        }
        return acc;
      });
      h = l < p.length - 1 ? z.map((v) => Math.max(0, v)) : z;
    });
    const max = Math.max(...h);
    const lse = max + Math.log(h.reduce((acc, v) => acc + Math.exp(v - max), 0));
    total += lse - h[LABELS[s]];
  }
  return total / N;
}

/** Central differences of the reference loss with respect to every entry of `p[l][part]`. */
function numericGrad(p: Params, l: number, part: "w" | "bias" | "a" | "b"): Float64Array {
  const v = p[l][part];
  const eps = 1e-6;
  return Float64Array.from(v, (orig, i) => {
    v[i] = orig + eps;
    const up = referenceLoss(p);
    v[i] = orig - eps;
    const down = referenceLoss(p);
    v[i] = orig;
    return (up - down) / (2 * eps);
  });
}

function tfGrads(p: Params, want: "base" | "lora"): Float32Array[][] {
  return tf.tidy(() => {
    const layers: LayerTensors[] = p.map((layer, l) => ({
      w: tf.tensor2d(Float32Array.from(layer.w), [DIMS[l + 1], DIMS[l]]),
      bias: tf.tensor1d(Float32Array.from(layer.bias)),
      lora: {
        a: tf.tensor2d(Float32Array.from(layer.a), [RANK, DIMS[l]]),
        b: tf.tensor2d(Float32Array.from(layer.b), [DIMS[l + 1], RANK]),
        scaling: SCALING,
      },
    }));
    const cache = forward(tf.tensor2d(Float32Array.from(X), [N, DIMS[0]]), layers);
    const ce = crossEntropy(cache.pre[1], tf.tensor1d(LABELS, "int32"), DIMS[2]);
    assertClose([ce.loss.dataSync()[0]], [referenceLoss(p)], { rtol: 1e-5, what: "loss" });
    return backward(cache, layers, ce.dLogits, want).map((g) =>
      (want === "base" ? [g.w!, g.bias!] : [g.a!, g.b!]).map((t) => Float32Array.from(t.dataSync())),
    );
  });
}

describe("mlp-math: hand-written gradients equal finite differences of a dense reference", async () => {
  await selectBackend();
  const initial = tf.getBackend();
  after(async () => {
    await tf.setBackend(initial);
  });
  for (const backend of await loadableBackends()) {
    test(`${backend}: base and LoRA gradients`, async () => {
      await activate(backend);
      const p = randomParams();
      const base = tfGrads(p, "base");
      const lora = tfGrads(p, "lora");
      p.forEach((_, l) => {
        const tol = { rtol: 1e-3, atol: 1e-5 };
        assertClose(base[l][0], numericGrad(p, l, "w"), { ...tol, what: `${backend} dW${l}` });
        assertClose(base[l][1], numericGrad(p, l, "bias"), { ...tol, what: `${backend} db${l}` });
        assertClose(lora[l][0], numericGrad(p, l, "a"), { ...tol, what: `${backend} dA${l}` });
        assertClose(lora[l][1], numericGrad(p, l, "b"), { ...tol, what: `${backend} dB${l}` });
      });
    });
  }
});
