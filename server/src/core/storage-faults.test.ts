import assert from "node:assert/strict";
import { test } from "node:test";
import { isStorageFull, isTransientFault } from "./storage-faults.ts";

const fault = (code: string) => Object.assign(new Error(code), { code });

test("disk-full and I/O errors are transient; the rest are not", () => {
  for (const code of ["ENOSPC", "EDQUOT", "EIO", "EMFILE"])
    assert.equal(isTransientFault(fault(code)), true, code);
  for (const code of ["ENOENT", "EACCES"]) assert.equal(isTransientFault(fault(code)), false, code);
  assert.equal(isTransientFault(new Error("x")), false);
  assert.equal(isTransientFault(null), false);
});

test("only ENOSPC and EDQUOT mean storage full", () => {
  assert.equal(isStorageFull(fault("ENOSPC")), true);
  assert.equal(isStorageFull(fault("EDQUOT")), true);
  for (const code of ["EIO", "ENOENT"]) assert.equal(isStorageFull(fault(code)), false, code);
  assert.equal(isStorageFull(undefined), false);
});
