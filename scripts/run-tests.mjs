#!/usr/bin/env node
// Runs every *.test.ts file of the repository with Node's test runner.
// Node 20's `node --test` neither expands globs nor fails on zero files, so
// this script finds the files itself and refuses to run none.
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const roots = ["proto", "server", "client-sdk", "test"];
const skip = new Set(["node_modules", "gen", ".git", "data"]);

/** @param {string} dir @returns {string[]} */
function findTests(dir) {
  /** @type {string[]} */
  const out = [];
  for (const entry of readdirSync(dir)) {
    if (skip.has(entry)) continue;
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) out.push(...findTests(path));
    else if (entry.endsWith(".test.ts")) out.push(path);
  }
  return out;
}

const filter = process.argv.slice(2);
const files = roots
  .flatMap((r) => {
    try {
      return findTests(join(root, r));
    } catch {
      return [];
    }
  })
  .map((f) => relative(root, f))
  .filter((f) => filter.length === 0 || filter.some((p) => f.includes(p)))
  .sort();

if (files.length === 0) {
  console.error(`run-tests: no test files found${filter.length ? ` matching ${filter.join(" ")}` : ""}`);
  process.exit(1);
}
console.log(`run-tests: ${files.length} test files`);
const result = spawnSync(process.execPath, ["--import", "tsx", "--test", "--test-reporter=spec", ...files], {
  cwd: root,
  stdio: "inherit",
  env: { ...process.env, TRIBUTARY_LOG: process.env.TRIBUTARY_LOG ?? "warn" },
});
process.exit(result.status ?? 1);
