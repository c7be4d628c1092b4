// Worker entry of `npm run bench -- hostile`'s honest client: registers the
// TypeScript loader in this thread (a worker's `.ts` entry is resolved before
// `--import`ed loaders apply on Node 20), then runs the probe.
import { register } from "tsx/esm/api";

register();
await import("./heartbeat-probe.ts");
