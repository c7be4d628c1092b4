/**
 * Dense float64 reference implementations of every merge method, written
 * straight from the papers' equations, for testing the factored engine.
 */
export * from "./als-dense.ts";
export * from "./central-dp-dense.ts";
export * from "./core-space-dense.ts";
export * from "./dare-dense.ts";
export * from "./fedavg-dense.ts";
export * from "./fedavg-factors-dense.ts";
export * from "./fedit-dense.ts";
export * from "./fr-dense.ts";
export * from "./from-dense.ts";
export * from "./knots-dense.ts";
export * from "./lore-dense.ts";
export { type MedianDenseResult, medianDense } from "./median-dense.ts";
export * from "./rank-partition-dense.ts";
export * from "./task-arithmetic-dense.ts";
export * from "./task-vectors.ts";
export * from "./ties-dense.ts";
