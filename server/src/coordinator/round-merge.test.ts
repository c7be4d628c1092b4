import assert from "node:assert/strict";
import { test } from "node:test";
import { AdapterFormatError } from "@tributary/protocol";
import type { UpdateRecord } from "../core/model.ts";
import { MergeInputError } from "../merge/errors.ts";
import { culpritOf, isTransientFault } from "./round-merge.ts";

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

test("disk-full and I/O errors are transient; the rest are not", () => {
  const fault = (code: string) => Object.assign(new Error(code), { code });
  for (const code of ["ENOSPC", "EDQUOT", "EIO", "EMFILE"])
    assert.equal(isTransientFault(fault(code)), true, code);
  for (const code of ["ENOENT", "EACCES"]) assert.equal(isTransientFault(fault(code)), false, code);
  assert.equal(isTransientFault(new Error("x")), false);
});
