import assert from "node:assert/strict";
import { test } from "node:test";
import { jsonNestingDepth } from "./json-depth.ts";

test("counts object and array nesting, ignoring brackets inside strings", () => {
  assert.equal(jsonNestingDepth("3"), 0);
  assert.equal(jsonNestingDepth('{"a": [1, {"b": 2}]}'), 3);
  assert.equal(jsonNestingDepth('{"a": "[[[{{{\\"]]]"}'), 1);
  assert.equal(jsonNestingDepth(`${"[".repeat(10_000)}${"]".repeat(10_000)}`), 10_000);
  assert.equal(
    jsonNestingDepth(`${"[".repeat(10_000)}${"]".repeat(10_000)}`, 32),
    33,
    "stops past the limit",
  );
});
