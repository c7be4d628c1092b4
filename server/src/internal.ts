/**
 * Internal entry point of `@tributary/server` for sibling packages, tests and
 * benchmarks: lower-level pieces whose shape may change without notice.
 */
export * from "./merge/linalg/index.ts";
export * from "./peft/index.ts";
export { llamaQV, type SyntheticAdapterSpec, writeSyntheticAdapter } from "./peft/synthetic-adapter.ts";
