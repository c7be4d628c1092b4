// Worker entry point when running from source (tests, tsx): registers the TypeScript loader in this thread, then
// runs the worker. (A worker's `.ts` entry is resolved before `--import`ed
// loaders apply on Node 20, so this small JS file goes first.)
import { register } from "tsx/esm/api";

register();
await import("./merge-worker.ts");
