/**
 * Forward and backward pass of a ReLU MLP whose linear layers may carry a
 * LoRA delta, written out by hand with `@tensorflow/tfjs-core` ops.
 *
 * Why not `tf.variableGrads`: tfjs-core registers no gradient functions by
 * itself (they ship in the ESM-only `dist/register_all_gradients`, which the
 * `@tensorflow/tfjs` union package imports and Node cannot load from
 * tfjs-core's extensionless ESM build), so autodiff fails with "gradient
 * function not found for Neg" on every backend unless tfjs-node happens to be
 * installed. The gradients of this network are four matrix products per
 * layer, so we write them down and hand them to a tfjs optimizer
 * (`optimizer.applyGradients`), which needs no gradient registry.
 *
 * Layout follows PyTorch / PEFT: a layer's weight is `[out, in]`,
 * `z = h Wᵀ + b + s · (h Aᵀ) Bᵀ`, with LoRA `A` `[r, in]` and `B` `[out, r]`.
 */
import * as tf from "@tensorflow/tfjs-core";

/** A LoRA delta on one layer: `ΔW = scaling · b · a`. */
export interface LoraTensors {
  /** `A`, `[r, in]`. */
  readonly a: tf.Tensor2D;
  /** `B`, `[out, r]`. */
  readonly b: tf.Tensor2D;
  readonly scaling: number;
}

/** One linear layer as tensors, with an optional LoRA delta. */
export interface LayerTensors {
  /** `[out, in]`. */
  readonly w: tf.Tensor2D;
  /** `[out]`. */
  readonly bias: tf.Tensor1D;
  readonly lora?: LoraTensors;
}

/** Gradients of one layer; only the requested parts are present. */
export interface LayerGrads {
  w?: tf.Tensor2D;
  bias?: tf.Tensor1D;
  a?: tf.Tensor2D;
  b?: tf.Tensor2D;
}

/** What the backward pass needs from the forward pass. */
export interface ForwardCache {
  /** Input of each layer (`h_0 = x`). */
  readonly inputs: tf.Tensor2D[];
  /** Pre-activation of each layer; the last one is the logits. */
  readonly pre: tf.Tensor2D[];
  /** `h Aᵀ` of each layer that has a LoRA delta. */
  readonly down: (tf.Tensor2D | undefined)[];
}

/**
 * Logits of the network; ReLU between layers, none after the last.
 * Dense equation per layer: `z = h (W + s·B·A)ᵀ + b`.
 */
export function forward(x: tf.Tensor2D, layers: readonly LayerTensors[]): ForwardCache {
  const cache: ForwardCache = { inputs: [], pre: [], down: [] };
  let h = x;
  layers.forEach((layer, l) => {
    cache.inputs.push(h);
    let z = tf.add<tf.Tensor2D>(tf.matMul(h, layer.w, false, true), layer.bias);
    let down: tf.Tensor2D | undefined;
    if (layer.lora !== undefined) {
      const u = tf.matMul<tf.Tensor2D>(h, layer.lora.a, false, true);
      z = tf.add<tf.Tensor2D>(z, tf.mul(tf.matMul(u, layer.lora.b, false, true), layer.lora.scaling));
      down = u;
    }
    cache.down.push(down);
    cache.pre.push(z);
    h = l < layers.length - 1 ? tf.relu(z) : z;
  });
  return cache;
}

/** Mean softmax cross-entropy and its gradient with respect to the logits, `(softmax(z) − y) / n`. */
export function crossEntropy(
  logits: tf.Tensor2D,
  labels: tf.Tensor1D,
  classes: number,
): { loss: tf.Scalar; dLogits: tf.Tensor2D } {
  const n = logits.shape[0];
  const y = tf.cast(tf.oneHot(labels, classes), "float32") as tf.Tensor2D;
  const logp = tf.logSoftmax(logits);
  const loss = tf.neg(tf.div(tf.sum(tf.mul(y, logp)), n)) as tf.Scalar;
  const dLogits = tf.div(tf.sub(tf.exp(logp), y), n) as tf.Tensor2D;
  return { loss, dLogits };
}

/**
 * Back-propagates `dLogits` and returns each layer's gradients: of `W` and
 * `b` when `want` is `"base"`, of the LoRA `A` and `B` when it is `"lora"`.
 * Per layer, with `u = h Aᵀ`: `dW = dzᵀ h`, `db = Σ_rows dz`,
 * `dB = s · dzᵀ u`, `dA = s · (dz B)ᵀ h`, `dh = dz W + s · (dz B) A`.
 */
export function backward(
  cache: ForwardCache,
  layers: readonly LayerTensors[],
  dLogits: tf.Tensor2D,
  want: "base" | "lora",
): LayerGrads[] {
  const grads: LayerGrads[] = layers.map(() => ({}));
  let dz = dLogits;
  for (let l = layers.length - 1; l >= 0; l--) {
    const layer = layers[l];
    const h = cache.inputs[l];
    const g = grads[l];
    if (want === "base") {
      g.w = tf.matMul<tf.Tensor2D>(dz, h, true, false);
      g.bias = tf.sum(dz, 0) as tf.Tensor1D;
    }
    let du: tf.Tensor2D | undefined;
    if (layer.lora !== undefined) {
      du = tf.mul(tf.matMul(dz, layer.lora.b), layer.lora.scaling) as tf.Tensor2D;
      if (want === "lora") {
        g.b = tf.mul(tf.matMul(dz, cache.down[l]!, true, false), layer.lora.scaling) as tf.Tensor2D;
        g.a = tf.matMul<tf.Tensor2D>(du, h, true, false);
      }
    }
    if (l === 0) break;
    let dh = tf.matMul(dz, layer.w);
    if (du !== undefined && layer.lora !== undefined)
      dh = tf.add<tf.Tensor2D>(dh, tf.matMul(du, layer.lora.a));
    dz = tf.mul<tf.Tensor2D>(dh, tf.step(cache.pre[l - 1]));
  }
  return grads;
}

/** A trainable variable holding `t`'s values; `t` itself is disposed. */
export function variableOf<R extends tf.Rank>(t: tf.Tensor<R>): tf.Variable<R> {
  const v = tf.variable(t);
  t.dispose();
  return v;
}

/** Predicted class of every row (`argmax` of the logits). */
export function predictClasses(x: tf.Tensor2D, layers: readonly LayerTensors[]): Int32Array {
  const classes = tf.tidy(() => {
    const cache = forward(x, layers);
    return tf.argMax(cache.pre[cache.pre.length - 1], 1);
  });
  const out = Int32Array.from(classes.dataSync());
  classes.dispose();
  return out;
}
