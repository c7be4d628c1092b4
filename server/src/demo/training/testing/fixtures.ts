/**
 * Shared fixtures of the training tests: a small task (4 nodes, 3 classes
 * each, covering all 10 classes) and its base network, trained once per
 * test process.
 */
import { selectBackend } from "../../../compute/backend.ts";
import { type BaseModel, trainBaseModel } from "../base-model.ts";
import { createTask, type Task, type TaskSpec } from "../task.ts";

/** The test task's spec. */
export const TEST_TASK: Partial<TaskSpec> = {
  nodes: 4,
  classesPerNode: 3,
  trainPerClass: 80,
  testPerClass: 60,
  pretrainPerClass: 300,
  seed: 11,
};

let cached: Promise<{ task: Task; base: BaseModel }> | undefined;

/** The test task and its trained base network (memoised). */
export function testFixture(): Promise<{ task: Task; base: BaseModel }> {
  cached ??= (async () => {
    await selectBackend();
    const task = createTask(TEST_TASK);
    return { task, base: trainBaseModel(task, { epochs: 8, seed: 11 }).model };
  })();
  return cached;
}
