// Dawn thread entry point when running from source (tests, tsx): registers
// the TypeScript loader in this thread, then runs the thread (see
// merge-worker-entry.mjs for why this small JS file goes first).
import { register } from "tsx/esm/api";

register();
await import("./webgpu-thread.ts");
