// Entry of a thread whose module is TypeScript, when running from source
// (tests, tsx): registers the TypeScript loader in this thread, then imports
// the module named in workerData.module. (A thread's `.ts` entry is resolved
// before `--import`ed loaders apply on Node 20, so this small JS file goes first.)
import { workerData } from "node:worker_threads";
import { register } from "tsx/esm/api";

register();
await import(workerData.module);
