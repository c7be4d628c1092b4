/**
 * The federated demo's training side, pure and in process (no network, no
 * coordinator): a seeded non-IID task, a frozen base MLP, LoRA fine-tuning
 * with TensorFlow.js, PEFT adapter files, and evaluation.
 *
 * @example
 * await selectBackend();
 * const task = createTask({ nodes: 5, seed: 1 });
 * const { model: base } = trainBaseModel(task);
 * const r = await trainNode({ node: 0, task, base, globalAdapter: null, rank: 8, epochs: 3, seed: 1 });
 * // submit r.adapter.configJson / r.adapter.safetensors with r.samples; later:
 * const { perNode, global } = await evaluate({ task, base, adapter: merged });
 */
export { type AdapterFiles, decodeLora, demoAdapterConfig, encodeLora } from "./adapter-files.ts";
export {
  BASE_MODEL_ID,
  type BaseModel,
  type BaseTrainingOptions,
  DEFAULT_BASE_TRAINING,
  type LinearWeights,
  moduleNames,
  moduleShapes,
  trainBaseModel,
} from "./base-model.ts";
export { type LocalMergeOptions, mergeAdapterFiles } from "./local-merge.ts";
export {
  type Evaluation,
  evaluate,
  type TrainNodeInput,
  type TrainNodeResult,
  trainNode,
} from "./local-round.ts";
export {
  accuracy,
  DEFAULT_LORA_TRAINING,
  initLora,
  type LoraFactors,
  type LoraTrainingOptions,
  type LoraWeights,
  predict,
  trainLora,
} from "./lora-model.ts";
export { formatRow, type RoundRow, type SimulationOptions, simulateFederation } from "./simulation.ts";
export {
  createTask,
  type Dataset,
  DEFAULT_TASK_SPEC,
  type NodeData,
  nodeClasses,
  type Task,
  type TaskSpec,
  trainPerClass,
} from "./task.ts";
