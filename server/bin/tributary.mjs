#!/usr/bin/env node
// Entry point of the `tributary` command: registers the TypeScript loader
// (tsx) and runs the CLI from source, so there is no build step to forget.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../src/cli/main.ts");
process.exitCode = await main(process.argv.slice(2));
