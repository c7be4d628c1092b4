#!/usr/bin/env node
// `npm run lint:packages`: checks that each package is publishable as built
// (run after `npm run build`), offline:
//   1. publint --strict: exports/files/bin/engines point at files the tarball has;
//   2. @arethetypeswrong/cli on the packed tarball (ESM-only profile): every
//      export resolves to JavaScript and type declarations under Node 16+ and
//      bundler resolution.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const packages = ["proto", "client-sdk", "server"];
const bin = (name) => join(root, "node_modules", ".bin", name);

/** Runs a command from the repository root; returns its status and output. */
function run(cmd, args, cwd = root) {
  const r = spawnSync(cmd, args, { cwd, encoding: "utf8" });
  return { ok: r.status === 0, output: `${r.stdout ?? ""}${r.stderr ?? ""}` };
}

const tmp = mkdtempSync(join(tmpdir(), "tributary-packages-"));
const failures = [];
try {
  for (const pkg of packages) {
    const lint = run(bin("publint"), ["--strict", pkg]);
    if (!lint.ok) failures.push(`${pkg}: publint\n${lint.output}`);
    const pack = run(
      "npm",
      ["pack", "--ignore-scripts", "--json", "--pack-destination", tmp],
      join(root, pkg),
    );
    if (!pack.ok) {
      failures.push(`${pkg}: npm pack\n${pack.output}`);
      continue;
    }
    const [{ filename }] = JSON.parse(pack.output.slice(pack.output.indexOf("[")));
    const types = run(bin("attw"), [join(tmp, filename), "--profile", "esm-only", "--format", "ascii"]);
    if (!types.ok) failures.push(`${pkg}: attw\n${types.output}`);
    console.log(`lint:packages: ${pkg} ${lint.ok && types.ok ? "ok" : "FAILED"}`);
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
if (failures.length > 0) {
  console.error(failures.join("\n\n"));
  process.exit(1);
}
