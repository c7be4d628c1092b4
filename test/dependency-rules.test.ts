/**
 * The boundary check (`npm run lint:deps`, scripts/check-deps.mjs) on a copy
 * of the sources: clean as committed, and failing, naming the file and the
 * rule, on each kind of planted violation.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { appendFileSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const CHECKER = join(ROOT, "scripts", "check-deps.mjs");
let copy = "";

/** A fresh copy of the sources the checker reads. */
function freshCopy(): string {
  rmSync(copy, { recursive: true, force: true });
  for (const path of [
    "server/src",
    "server/dependency-rules.json",
    "server/README.md",
    "proto/src",
    "client-sdk/src",
  ]) {
    cpSync(join(ROOT, path), join(copy, path), {
      recursive: true,
      filter: (src) => !/(node_modules|dist)$/.test(src),
    });
  }
  return copy;
}

function check(): { code: number; output: string } {
  const r = spawnSync(process.execPath, [CHECKER, "--root", copy], { encoding: "utf8" });
  return { code: r.status ?? 1, output: `${r.stdout}${r.stderr}` };
}

describe("dependency rules", () => {
  before(() => {
    copy = mkdtempSync(join(tmpdir(), "tributary-deps-"));
  });
  after(() => rmSync(copy, { recursive: true, force: true }));

  it("pass on the sources as they are", () => {
    freshCopy();
    const { code, output } = check();
    assert.equal(code, 0, output);
    assert.match(output, /lint:deps: ok/);
  });

  it("fail when the core imports an adapter, naming the file and what the folder may import", () => {
    freshCopy();
    appendFileSync(join(copy, "server/src/core/clock.ts"), '\nimport "../store/file-store.ts";\n');
    const { code, output } = check();
    assert.equal(code, 1);
    assert.match(
      output,
      /server\/src\/core\/clock\.ts imports store\/file-store\.ts: core\/ may import merge\/, peft\//,
    );
  });

  it("fail on an undeclared package, a cycle of files and shipped code importing test support", () => {
    freshCopy();
    appendFileSync(
      join(copy, "server/src/coordinator/cohort.ts"),
      '\nimport "pino";\nimport "../core/testing/fake-clock.ts";\n',
    );
    // tensor-location.ts imports safetensors.ts: importing it back closes a cycle.
    appendFileSync(join(copy, "server/src/peft/safetensors.ts"), '\nimport "./tensor-location.ts";\n');
    const { code, output } = check();
    assert.equal(code, 1);
    assert.match(
      output,
      /cohort\.ts imports pino: coordinator\/ may import the packages @tributary\/protocol/,
    );
    assert.match(output, /cohort\.ts imports test support core\/testing\/fake-clock\.ts/);
    assert.match(output, /import cycle: .*peft\/safetensors\.ts.*peft\/tensor-location\.ts/);
  });

  it("fail when the client imports the server, or a rule allows a folder listed after it", () => {
    freshCopy();
    appendFileSync(join(copy, "client-sdk/src/retry.ts"), '\nimport "@tributary/server";\n');
    const rulesPath = join(copy, "server/dependency-rules.json");
    const rules = JSON.parse(readFileSync(rulesPath, "utf8")) as {
      folders: { folder: string; imports: string[] }[];
    };
    rules.folders.find((f) => f.folder === "merge")?.imports.push("compute");
    writeFileSync(rulesPath, JSON.stringify(rules));
    const { code, output } = check();
    assert.equal(code, 1);
    assert.match(
      output,
      /client-sdk\/retry\.ts imports @tributary\/server: client-sdk may import @tributary\/protocol/,
    );
    assert.match(output, /merge imports compute, which is not listed before it/);
  });

  it("fail when server/README.md's table drifts from the rules", () => {
    freshCopy();
    const readme = join(copy, "server/README.md");
    writeFileSync(
      readme,
      readFileSync(readme, "utf8").replace("| `src/store/` |", "| `src/store/` (edited) |"),
    );
    const { code, output } = check();
    assert.equal(code, 1);
    assert.match(output, /folder table differs/);
  });
});
