import assert from "node:assert/strict";
import { test } from "node:test";
import { AdapterFormatError } from "@tributary/protocol";
import { MergeOptionsError } from "../merge/errors.ts";
import { errorKind, StaleRoundError, UpdateTooLargeError } from "./errors.ts";

test("errorKind maps coordinator, adapter and merge errors", () => {
  assert.equal(errorKind(new UpdateTooLargeError("c", 10, 5)), "resource-exhausted");
  assert.equal(errorKind(new StaleRoundError("f", 1, undefined)), "failed-precondition");
  assert.equal(errorKind(new AdapterFormatError("x", "x")), "invalid-argument");
  assert.equal(errorKind(new MergeOptionsError("x")), "invalid-argument");
  assert.equal(errorKind(new Error("boom")), undefined);
  assert.match(new UpdateTooLargeError("c", 10, 5).message, /10 bytes.*limit of 5 bytes/);
});
