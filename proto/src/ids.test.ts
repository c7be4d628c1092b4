import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ID_RULES, idProblem, isValidId, quoteValue } from "./ids.ts";

describe("id rules", () => {
  it("accepts what every store path and NATS subject can hold", () => {
    for (const kind of ["federation_id", "client_id", "update_id"] as const) {
      for (const ok of ["a", "A-b_9", "x".repeat(128)])
        assert.equal(idProblem(kind, ok), undefined, `${kind} ${ok}`);
    }
    assert.ok(isValidId("update_id", "r3-1f2e.v2"));
    assert.ok(isValidId("client_id", "node.eu-1"));
  });

  it("refuses ':' , '.', '..', empty, too long, non-strings, naming the field and the rule", () => {
    for (const kind of ["federation_id", "client_id", "update_id"] as const) {
      for (const bad of ["", ".", "..", "a:b", "a/b", "x".repeat(129), 7, undefined, "é"]) {
        const problem = idProblem(kind, bad);
        assert.ok(problem?.startsWith(`${kind} `), `${kind} ${String(bad)}: ${problem}`);
        assert.ok(problem?.endsWith(ID_RULES[kind]), problem);
      }
    }
  });

  it("keeps '.' out of federation ids only (NATS subject tokens)", () => {
    assert.match(idProblem("federation_id", "a.b") ?? "", /NATS subject token/);
    assert.equal(idProblem("client_id", "a.b"), undefined);
  });

  it("quotes at most a short prefix of a long value", () => {
    const problem = idProblem("update_id", `${"y".repeat(100_000)}:`) ?? "";
    assert.ok(problem.length < 200, `${problem.length} characters`);
    assert.match(problem, /\(100001 characters\)/);
    assert.equal(quoteValue("short"), '"short"');
  });
});
