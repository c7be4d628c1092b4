#!/usr/bin/env node
// `npm run lint:packages`: checks that each package is publishable as built
// (run after `npm run build`), offline:
//   1. publint --strict: exports/files/bin/engines point at files the tarball has;
//   2. @arethetypeswrong/cli on the packed tarball (ESM-only profile): every
//      export resolves to JavaScript and type declarations under Node 16+ and
//      bundler resolution;
//   3. every package the compiled JavaScript imports is a declared dependency
//      (no import that works only through workspace hoisting);
//   4. the tarball holds no test support: no tests, no `testing/` folders,
//      no dense `reference/` implementations, no fixtures.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { builtinModules } from "node:module";
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

/** Every `.js` file under `dir`. @param {string} dir @returns {string[]} */
function jsFiles(dir) {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) return jsFiles(path);
    return entry.endsWith(".js") || entry.endsWith(".mjs") ? [path] : [];
  });
}

const IMPORT = /^\s*(?:import|export)\s[^"'`]*?from\s*["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']\s*\)/gm;

/** Packages imported by `pkg`'s dist/ that its package.json does not declare. @param {string} pkg */
function undeclaredImports(pkg) {
  const manifest = JSON.parse(readFileSync(join(root, pkg, "package.json"), "utf8"));
  const declared = new Set([
    manifest.name,
    ...Object.keys(manifest.dependencies ?? {}),
    ...Object.keys(manifest.optionalDependencies ?? {}),
    ...Object.keys(manifest.peerDependencies ?? {}),
  ]);
  const problems = [];
  for (const file of jsFiles(join(root, pkg, "dist"))) {
    for (const m of readFileSync(file, "utf8").matchAll(IMPORT)) {
      const spec = m[1] ?? m[2];
      if (spec.startsWith(".") || spec.startsWith("node:") || builtinModules.includes(spec)) continue;
      const name = spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0];
      if (!declared.has(name)) problems.push(`${file.slice(root.length)} imports ${spec}, not a dependency`);
    }
  }
  return problems;
}

/** Paths of test support, which no tarball may hold. */
const TEST_SUPPORT =
  /(^|\/)(testing|reference|__tests__)\/|\.test\.[cm]?[jt]s$|test-fixtures|(^|\/)fake-[^/]*$/;

const tmp = mkdtempSync(join(tmpdir(), "tributary-packages-"));
const failures = [];
try {
  for (const pkg of packages) {
    const lint = run(bin("publint"), ["--strict", pkg]);
    if (!lint.ok) failures.push(`${pkg}: publint\n${lint.output}`);
    const undeclared = undeclaredImports(pkg);
    if (undeclared.length > 0) failures.push(`${pkg}: undeclared imports\n${undeclared.join("\n")}`);
    const pack = run(
      "npm",
      ["pack", "--ignore-scripts", "--json", "--pack-destination", tmp],
      join(root, pkg),
    );
    if (!pack.ok) {
      failures.push(`${pkg}: npm pack\n${pack.output}`);
      continue;
    }
    const [{ filename, files }] = JSON.parse(pack.output.slice(pack.output.indexOf("[")));
    const support = files.map((f) => f.path).filter((path) => TEST_SUPPORT.test(path));
    if (support.length > 0) failures.push(`${pkg}: test support in the tarball\n${support.join("\n")}`);
    const types = run(bin("attw"), [join(tmp, filename), "--profile", "esm-only", "--format", "ascii"]);
    if (!types.ok) failures.push(`${pkg}: attw\n${types.output}`);
    console.log(
      `lint:packages: ${pkg} ${lint.ok && types.ok && undeclared.length === 0 && support.length === 0 ? "ok" : "FAILED"}`,
    );
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
if (failures.length > 0) {
  console.error(failures.join("\n\n"));
  process.exit(1);
}
