/**
 * Seeded minibatches of a `Dataset` as tfjs tensors: a fresh Fisher–Yates
 * permutation per epoch, drawn from a counter-based stream, so the order
 * depends only on `(seed, epoch)`.
 */
import * as tf from "@tensorflow/tfjs-core";
import { streamKey, uniformAt } from "../../merge/random.ts";
import type { Dataset } from "./task.ts";

/** One minibatch; the consumer disposes `x` and `y`. */
export interface Batch {
  /** `[batch, dim]`. */
  readonly x: tf.Tensor2D;
  /** `[batch]` class indices (int32). */
  readonly y: tf.Tensor1D;
  readonly epoch: number;
  /** Whether this is the last batch of its epoch. */
  readonly last: boolean;
}

/** A seeded permutation of `0 … n−1`. */
export function permutation(n: number, key: number): Uint32Array {
  const p = Uint32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(uniformAt(key, i) * (i + 1));
    [p[i], p[j]] = [p[j], p[i]];
  }
  return p;
}

/** Rows `idx` of `data` as tensors. */
export function gather(data: Dataset, idx: ArrayLike<number>): { x: tf.Tensor2D; y: tf.Tensor1D } {
  const x = new Float32Array(idx.length * data.dim);
  const y = new Int32Array(idx.length);
  for (let k = 0; k < idx.length; k++) {
    const r = idx[k];
    x.set(data.x.subarray(r * data.dim, (r + 1) * data.dim), k * data.dim);
    y[k] = data.y[r];
  }
  return { x: tf.tensor2d(x, [idx.length, data.dim]), y: tf.tensor1d(y, "int32") };
}

/**
 * `epochs` passes over `data` in batches of `batchSize` (the last one of an
 * epoch may be smaller).
 *
 * @example
 * for (const { x, y } of minibatches(node.train, 32, 3, seed)) { …; tf.dispose([x, y]); }
 */
export function* minibatches(
  data: Dataset,
  batchSize: number,
  epochs: number,
  seed: number,
): Generator<Batch> {
  for (let epoch = 0; epoch < epochs; epoch++) {
    const order = permutation(data.n, streamKey(seed, "epoch", epoch));
    for (let start = 0; start < data.n; start += batchSize) {
      const end = Math.min(data.n, start + batchSize);
      yield { ...gather(data, order.subarray(start, end)), epoch, last: end === data.n };
    }
  }
}
