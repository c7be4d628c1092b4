/**
 * One simulated node's round, in process and without any network: decode the
 * global adapter (or start a fresh one), fine-tune it on the node's private
 * data, and return the result as a PEFT adapter with the sample count and
 * metrics a client reports; plus the evaluation the demo prints.
 *
 * Rank choice: a node continues from the global adapter's factors *at the
 * global adapter's rank and scaling* (as its config gives them), so nothing
 * is lost to a re-factorisation and what it submits has the rank the merge
 * produced; `rank` and `alpha` only shape the fresh adapter of the first
 * round (no global adapter yet). With the merge's output rank equal to the
 * nodes' rank (the demo's setting), the rank stays the same every round.
 */
import { selectBackend } from "../../compute/backend.ts";
import { streamKey } from "../../merge/random.ts";
import type { AdapterConfig } from "../../peft/index.ts";
import { type AdapterFiles, decodeLora, encodeLora } from "./adapter-files.ts";
import type { BaseModel } from "./base-model.ts";
import { accuracy, initLora, type LoraWeights, trainLora } from "./lora-model.ts";
import type { Task } from "./task.ts";

/** What `trainNode` needs. */
export interface TrainNodeInput {
  /** Index of the node in `task.nodes`. */
  readonly node: number;
  readonly task: Task;
  readonly base: BaseModel;
  /** The current global adapter; `null` in the first round. */
  readonly globalAdapter: AdapterFiles | null;
  /** Rank of a fresh adapter (first round). */
  readonly rank: number;
  /** `lora_alpha` of a fresh adapter (default `2 · rank`). */
  readonly alpha?: number;
  readonly epochs: number;
  /** Seeds the fresh adapter's `A` and the batch order; vary it per round. */
  readonly seed: number;
  /** Adam step size (default 2e-3). */
  readonly learningRate?: number;
  /** Minibatch size (default 32). */
  readonly batchSize?: number;
  /**
   * Fold the global adapter into the base weights and train fresh factors on
   * top (the adapter sent is then this round's delta: FedBuff, FLoRA);
   * default: train on from the global adapter's factors.
   */
  readonly foldGlobal?: boolean;
}

/** `base` with each module's `s·B·A` of `weights` added to its weights. */
export function foldedBase(base: BaseModel, weights: LoraWeights): BaseModel {
  return {
    ...base,
    layers: base.layers.map((layer) => {
      const f = weights.get(layer.name);
      if (f === undefined) return layer;
      const w = Float32Array.from(layer.w);
      for (let o = 0; o < f.dOut; o++) {
        for (let k = 0; k < f.rank; k++) {
          const bk = f.scaling * f.b[o * f.rank + k];
          if (bk === 0) continue;
          for (let i = 0; i < f.dIn; i++) w[o * f.dIn + i] += bk * f.a[k * f.dIn + i];
        }
      }
      return { ...layer, w };
    }),
  };
}

/** What a node sends back after its local round. */
export interface TrainNodeResult {
  /** The fine-tuned adapter, a real PEFT adapter. */
  readonly adapter: AdapterFiles;
  /** Training samples it was fitted on (FedAvg's weight). */
  readonly samples: number;
  readonly metrics: {
    /** Mean cross-entropy over the last local epoch. */
    readonly loss: number;
    /** Accuracy of the fine-tuned adapter on the node's own test split. */
    readonly accuracy: number;
  };
}

/** Per-node and global accuracy of one adapter. */
export interface Evaluation {
  /** Accuracy on each node's test split (its classes, shifted distribution), in node order. */
  readonly perNode: number[];
  /** Accuracy on the global test set (every class, shifted distribution). */
  readonly global: number;
}

/** Throws unless every module of `weights` is a layer of `base` with matching shapes. */
function checkModules(base: BaseModel, weights: LoraWeights, label: string): void {
  for (const [name, f] of weights) {
    const layer = base.layers.find((l) => l.name === name);
    if (layer === undefined) throw new RangeError(`${label}: module ${name} is not a layer of ${base.id}`);
    if (layer.dIn !== f.dIn || layer.dOut !== f.dOut) {
      throw new RangeError(
        `${label}: module ${name} is ${f.dOut}×${f.dIn}, the base layer is ${layer.dOut}×${layer.dIn}`,
      );
    }
  }
}

/**
 * Runs one node's local round. Deterministic for a given input on a given
 * tfjs backend (selected here with `selectBackend()` unless already chosen).
 *
 * @example
 * const { adapter, samples, metrics } = await trainNode({ node: 2, task, base, globalAdapter: null, rank: 4, epochs: 3, seed: 1 });
 */
export async function trainNode(input: TrainNodeInput): Promise<TrainNodeResult> {
  await selectBackend();
  const data = input.task.nodes[input.node];
  if (data === undefined)
    throw new RangeError(`no node ${input.node} in a task of ${input.task.nodes.length}`);
  let init: LoraWeights | undefined;
  let template: AdapterConfig | undefined;
  let base = input.base;
  if (input.globalAdapter !== null) {
    const decoded = decodeLora(input.globalAdapter, "global adapter");
    checkModules(input.base, decoded.weights, "global adapter");
    if (input.foldGlobal === true) {
      base = foldedBase(input.base, decoded.weights);
    } else {
      init = decoded.weights;
      template = decoded.config;
    }
  }
  init ??= initLora(input.base, {
    rank: input.rank,
    alpha: input.alpha ?? 2 * input.rank,
    seed: streamKey(input.seed, "node", input.node),
  });
  const { weights, loss } = trainLora(base, init, data.train, {
    epochs: input.epochs,
    seed: streamKey(input.seed, "node", input.node),
    ...(input.learningRate !== undefined ? { learningRate: input.learningRate } : {}),
    ...(input.batchSize !== undefined ? { batchSize: input.batchSize } : {}),
  });
  return {
    adapter: encodeLora(weights, template),
    samples: data.train.n,
    metrics: { loss, accuracy: accuracy(base, weights, data.test) },
  };
}

/**
 * Accuracy of the base with `adapter` applied (`null`: the base alone) on
 * every node's test split and on the global test set.
 *
 * @example
 * const { perNode, global } = await evaluate({ task, base, adapter: merged });
 */
export async function evaluate(input: {
  readonly task: Task;
  readonly base: BaseModel;
  readonly adapter: AdapterFiles | null;
}): Promise<Evaluation> {
  await selectBackend();
  let weights: LoraWeights | null = null;
  if (input.adapter !== null) {
    weights = decodeLora(input.adapter, "adapter").weights;
    checkModules(input.base, weights, "adapter");
  }
  return {
    perNode: input.task.nodes.map((n) => accuracy(input.base, weights, n.test)),
    global: accuracy(input.base, weights, input.task.globalTest),
  };
}
