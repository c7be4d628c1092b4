/**
 * The demo's frozen base network: a ReLU MLP `dim → hidden… → classes`
 * trained once, seeded, on the task's pretraining distribution (a few
 * seconds), then only read. Its linear layers carry PEFT-style module names
 * (`model.layers.<i>.fc`, `model.head`), the names LoRA adapters target.
 */
import * as tf from "@tensorflow/tfjs-core";
import { normalAt, streamKey } from "../../merge/random.ts";
import { minibatches } from "./batches.ts";
import { backward, crossEntropy, forward, type LayerTensors, variableOf } from "./mlp-math.ts";
import type { Task } from "./task.ts";

/** `base_model_name_or_path` of every demo adapter. */
export const BASE_MODEL_ID = "tributary-demo/mlp";

/** One frozen linear layer: `z = x Wᵀ + bias`. */
export interface LinearWeights {
  /** Module name, e.g. `model.layers.0.fc`. */
  readonly name: string;
  readonly dIn: number;
  readonly dOut: number;
  /** Row-major `[dOut, dIn]` (PyTorch layout). */
  readonly w: Float32Array;
  readonly bias: Float32Array;
}

/** The frozen base network. */
export interface BaseModel {
  readonly id: string;
  readonly layers: readonly LinearWeights[];
}

/** How the base network is built and pretrained. */
export interface BaseTrainingOptions {
  /** Hidden layer widths. */
  readonly hidden: readonly number[];
  readonly epochs: number;
  readonly batchSize: number;
  readonly learningRate: number;
  readonly seed: number;
}

/** Defaults: two hidden layers of 128, 10 epochs of Adam. */
export const DEFAULT_BASE_TRAINING: BaseTrainingOptions = {
  hidden: [128, 128],
  epochs: 10,
  batchSize: 64,
  learningRate: 3e-3,
  seed: 1,
};

/** Module names of an MLP with `hiddenLayers` hidden layers: `model.layers.<i>.fc`, then `model.head`. */
export function moduleNames(hiddenLayers: number): string[] {
  return [...Array.from({ length: hiddenLayers }, (_, i) => `model.layers.${i}.fc`), "model.head"];
}

/** Names and shapes of the base's linear layers (what a federation schema lists). */
export function moduleShapes(base: BaseModel): { name: string; dIn: number; dOut: number }[] {
  return base.layers.map(({ name, dIn, dOut }) => ({ name, dIn, dOut }));
}

/** The base's weights as tensors (the caller disposes them). */
export function baseTensors(base: BaseModel): LayerTensors[] {
  return base.layers.map((l) => ({
    w: tf.tensor2d(l.w, [l.dOut, l.dIn]),
    bias: tf.tensor1d(l.bias),
  }));
}

/**
 * Trains the base network on `task.pretrain.train` with Adam (He-normal
 * init, seeded, zero biases) and returns its weights. Deterministic on a
 * given tfjs backend. The caller has selected a backend (`selectBackend()`).
 *
 * @example
 * const { model, loss } = trainBaseModel(task);
 */
export function trainBaseModel(
  task: Task,
  partial: Partial<BaseTrainingOptions> = {},
): { model: BaseModel; loss: number } {
  const o: BaseTrainingOptions = { ...DEFAULT_BASE_TRAINING, ...partial };
  const widths = [task.spec.dim, ...o.hidden, task.spec.classes];
  const names = moduleNames(o.hidden.length);
  const vars = names.map((name, l) => {
    const [dIn, dOut] = [widths[l], widths[l + 1]];
    const key = streamKey(o.seed, "base", name);
    const std = Math.sqrt(2 / dIn);
    const w = Float32Array.from({ length: dOut * dIn }, (_, i) => std * normalAt(key, i));
    return { w: variableOf(tf.tensor2d(w, [dOut, dIn])), bias: variableOf(tf.zeros([dOut]) as tf.Tensor1D) };
  });
  const optimizer = tf.train.adam(o.learningRate);
  let lossSum = 0;
  let lossCount = 0;
  try {
    for (const batch of minibatches(task.pretrain.train, o.batchSize, o.epochs, streamKey(o.seed, "order"))) {
      const layers: LayerTensors[] = vars.map((v) => ({ w: v.w, bias: v.bias }));
      const { loss, grads } = tf.tidy(() => {
        const cache = forward(batch.x, layers);
        const ce = crossEntropy(cache.pre[cache.pre.length - 1], batch.y, task.spec.classes);
        const g = backward(cache, layers, ce.dLogits, "base");
        return { loss: ce.loss, grads: g.flatMap((gl) => [gl.w!, gl.bias!]) };
      });
      optimizer.applyGradients(
        vars.flatMap((v, l) => [
          { name: v.w.name, tensor: grads[2 * l] },
          { name: v.bias.name, tensor: grads[2 * l + 1] },
        ]),
      );
      if (batch.epoch === o.epochs - 1) {
        lossSum += loss.dataSync()[0] * batch.x.shape[0];
        lossCount += batch.x.shape[0];
      }
      tf.dispose([batch.x, batch.y, loss, ...grads]);
    }
    const layers = vars.map(
      (v, l): LinearWeights => ({
        name: names[l],
        dIn: widths[l],
        dOut: widths[l + 1],
        w: Float32Array.from(v.w.dataSync()),
        bias: Float32Array.from(v.bias.dataSync()),
      }),
    );
    return { model: { id: BASE_MODEL_ID, layers }, loss: lossSum / lossCount };
  } finally {
    optimizer.dispose();
    tf.dispose(vars.flatMap((v) => [v.w, v.bias]));
  }
}
