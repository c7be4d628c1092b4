/**
 * LoRA adapters on the base MLP's linear layers, PEFT-style: `A` `[r, in]`
 * (Kaiming-uniform, as PEFT initialises it), `B` `[out, r]` (zeros),
 * forward `z = x Wᵀ + b + scaling · (x Aᵀ) Bᵀ` with the base frozen. Local
 * training runs Adam on `A` and `B` only; evaluation is plain accuracy.
 */
import * as tf from "@tensorflow/tfjs-core";
import { streamKey, uniformAt } from "../../merge/random.ts";
import { type BaseModel, baseTensors } from "./base-model.ts";
import { gather, minibatches } from "./batches.ts";
import {
  backward,
  crossEntropy,
  forward,
  type LayerTensors,
  predictClasses,
  variableOf,
} from "./mlp-math.ts";
import type { Dataset } from "./task.ts";

/** One module's LoRA factors: `ΔW = scaling · b · a`. */
export interface LoraFactors {
  readonly dIn: number;
  readonly dOut: number;
  readonly rank: number;
  readonly scaling: number;
  /** `A`, row-major `[rank, dIn]`. */
  readonly a: Float32Array;
  /** `B`, row-major `[dOut, rank]`. */
  readonly b: Float32Array;
}

/** A LoRA adapter in memory: factors by module name (modules absent here are not adapted). */
export type LoraWeights = ReadonlyMap<string, LoraFactors>;

/** Local training hyper-parameters. */
export interface LoraTrainingOptions {
  readonly epochs: number;
  readonly batchSize: number;
  readonly learningRate: number;
  /** Seeds the batch order. */
  readonly seed: number;
}

/** Defaults: 3 epochs of Adam at 2e-3 in batches of 32. */
export const DEFAULT_LORA_TRAINING: LoraTrainingOptions = {
  epochs: 3,
  batchSize: 32,
  learningRate: 2e-3,
  seed: 1,
};

/**
 * A fresh adapter on every layer of `base`: `A` uniform in `±1/√dIn` (PEFT's
 * `kaiming_uniform_(a=√5)`), `B = 0`, `scaling = alpha / rank`.
 *
 * @example
 * const lora = initLora(base, { rank: 4, alpha: 8, seed: 3 });
 */
export function initLora(base: BaseModel, o: { rank: number; alpha: number; seed: number }): LoraWeights {
  if (!Number.isInteger(o.rank) || o.rank < 1) throw new RangeError(`LoRA rank must be ≥ 1, got ${o.rank}`);
  const out = new Map<string, LoraFactors>();
  for (const l of base.layers) {
    const key = streamKey(o.seed, "lora-a", l.name);
    const bound = 1 / Math.sqrt(l.dIn);
    const a = Float32Array.from({ length: o.rank * l.dIn }, (_, i) => (2 * uniformAt(key, i) - 1) * bound);
    out.set(l.name, {
      dIn: l.dIn,
      dOut: l.dOut,
      rank: o.rank,
      scaling: o.alpha / o.rank,
      a,
      b: new Float32Array(l.dOut * o.rank),
    });
  }
  return out;
}

/** Base tensors with the adapter's factors attached (the caller disposes them). */
function attach(base: BaseModel, lora: LoraWeights | null): LayerTensors[] {
  return baseTensors(base).map((layer, l) => {
    const f = lora?.get(base.layers[l].name);
    if (f === undefined) return layer;
    const a = tf.tensor2d(f.a, [f.rank, f.dIn]);
    const b = tf.tensor2d(f.b, [f.dOut, f.rank]);
    return { ...layer, lora: { a, b, scaling: f.scaling } };
  });
}

/** Like `attach`, with every `A` and `B` a trainable variable, listed in layer order. */
function attachTrainable(
  base: BaseModel,
  lora: LoraWeights,
): { layers: LayerTensors[]; trained: tf.Variable[] } {
  const trained: tf.Variable[] = [];
  const layers = attach(base, lora).map((layer) => {
    if (layer.lora === undefined) return layer;
    const [a, b] = [variableOf(layer.lora.a), variableOf(layer.lora.b)];
    trained.push(a, b);
    return { ...layer, lora: { ...layer.lora, a, b } };
  });
  return { layers, trained };
}

function disposeLayers(layers: readonly LayerTensors[]): void {
  tf.dispose(layers.flatMap((l) => [l.w, l.bias, ...(l.lora ? [l.lora.a, l.lora.b] : [])]));
}

/**
 * Fine-tunes the adapter's `A` and `B` on `data` (base frozen), starting from
 * `init`, and returns the trained factors (same ranks and scalings) with the
 * mean training loss of the last epoch. Deterministic on a given backend.
 *
 * @example
 * const { weights, loss } = trainLora(base, initLora(base, { rank: 4, alpha: 8, seed: 1 }), node.train, { epochs: 3 });
 */
export function trainLora(
  base: BaseModel,
  init: LoraWeights,
  data: Dataset,
  partial: Partial<LoraTrainingOptions> = {},
): { weights: LoraWeights; loss: number } {
  const o: LoraTrainingOptions = { ...DEFAULT_LORA_TRAINING, ...partial };
  const classes = base.layers[base.layers.length - 1].dOut;
  const { layers, trained } = attachTrainable(base, init);
  const optimizer = tf.train.adam(o.learningRate);
  let lossSum = 0;
  let lossCount = 0;
  try {
    for (const batch of minibatches(data, o.batchSize, o.epochs, streamKey(o.seed, "lora-order"))) {
      const { loss, grads } = tf.tidy(() => {
        const cache = forward(batch.x, layers);
        const ce = crossEntropy(cache.pre[cache.pre.length - 1], batch.y, classes);
        const g = backward(cache, layers, ce.dLogits, "lora");
        return { loss: ce.loss, grads: g.flatMap((gl) => (gl.a ? [gl.a, gl.b!] : [])) };
      });
      optimizer.applyGradients(trained.map((v, i) => ({ name: v.name, tensor: grads[i] })));
      if (batch.epoch === o.epochs - 1) {
        lossSum += loss.dataSync()[0] * batch.x.shape[0];
        lossCount += batch.x.shape[0];
      }
      tf.dispose([batch.x, batch.y, loss, ...grads]);
    }
    const weights = new Map<string, LoraFactors>();
    layers.forEach((l, i) => {
      const f = init.get(base.layers[i].name);
      if (l.lora === undefined || f === undefined) return;
      weights.set(base.layers[i].name, {
        ...f,
        a: Float32Array.from(l.lora.a.dataSync()),
        b: Float32Array.from(l.lora.b.dataSync()),
      });
    });
    return { weights, loss: lossCount > 0 ? lossSum / lossCount : Number.NaN };
  } finally {
    optimizer.dispose();
    disposeLayers(layers);
  }
}

/** Predicted class of every sample of `data` by the base with `lora` applied (`null`: the base alone). */
export function predict(base: BaseModel, lora: LoraWeights | null, data: Dataset): Int32Array {
  const layers = attach(base, lora);
  const { x, y } = gather(
    data,
    Uint32Array.from({ length: data.n }, (_, i) => i),
  );
  try {
    return predictClasses(x, layers);
  } finally {
    tf.dispose([x, y]);
    disposeLayers(layers);
  }
}

/** Fraction of `data` classified correctly by the base with `lora` applied (`null`: the base alone). */
export function accuracy(base: BaseModel, lora: LoraWeights | null, data: Dataset): number {
  if (data.n === 0) return Number.NaN;
  const pred = predict(base, lora, data);
  let ok = 0;
  for (let i = 0; i < data.n; i++) if (pred[i] === data.y[i]) ok++;
  return ok / data.n;
}
