import assert from "node:assert/strict";
import { test } from "node:test";
import { AdapterFormatError } from "@tributary/protocol";
import type { UpdateRecord } from "../core/model.ts";
import { MergeInputError } from "../merge/errors.ts";
import { culpritOf } from "./round-merge.ts";

const updates = ["alice", "bob", "carol"].map((clientId) => ({ clientId }) as UpdateRecord);

test("a merge failure is pinned on the client whose update file or index it names, else on nobody", () => {
  const file = new AdapterFormatError(
    "client bob/adapter_model.safetensors: tensor x has NaN",
    "client bob/adapter_model.safetensors",
    "x",
  );
  assert.equal(culpritOf(file, updates), "bob");
  assert.equal(culpritOf(new MergeInputError("m: client 2 has scaling NaN", "m", 2), updates), "carol");
  assert.equal(culpritOf(new MergeInputError("m: no clients", "m"), updates), undefined);
  assert.equal(culpritOf(new AdapterFormatError("merged: bad", "merged"), updates), undefined);
  assert.equal(culpritOf(new Error("symEig did not converge"), updates), undefined);
});
