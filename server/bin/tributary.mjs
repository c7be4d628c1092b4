#!/usr/bin/env node
// Entry point of the `tributary` command: runs the compiled CLI (`npm run
// build`, which `npm install` runs through `prepare`).
import { main } from "../dist/cli/main.js";

process.exitCode = await main(process.argv.slice(2));
