import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { test } from "node:test";
import { HEAP_GROWING_FLAG, HEAP_GROWING_PERCENT, tuneHeapGrowth } from "./heap-growth.ts";

test("tuneHeapGrowth sets V8's heap growing percent when the process was started without one", () => {
  const set: string[] = [];
  assert.equal(
    tuneHeapGrowth(["--import", "./server/telemetry.mjs"], (f) => set.push(f)),
    true,
  );
  assert.deepEqual(set, [`--heap-growing-percent=${HEAP_GROWING_PERCENT}`]);
});

test("tuneHeapGrowth leaves an operator's own --heap-growing-percent, however it is spelt", () => {
  for (const own of ["--heap-growing-percent=50", "--heap_growing_percent=50", "--heap-growing-percent"]) {
    const set: string[] = [];
    assert.equal(
      tuneHeapGrowth([own], (f) => set.push(f)),
      false,
      own,
    );
    assert.deepEqual(set, [], own);
  }
});

test("the running Node's V8 knows the flag (setFlagsFromString ignores unknown ones silently)", () => {
  const options = execFileSync(process.execPath, ["--v8-options"], { encoding: "utf8", maxBuffer: 16 << 20 });
  assert.match(options, new RegExp(`^\\s*${HEAP_GROWING_FLAG} \\(specifies heap growing factor`, "m"));
});
