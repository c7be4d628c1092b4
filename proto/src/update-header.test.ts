import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  contentHashProblem,
  type HeaderFields,
  normalizeContentHash,
  UPDATE_HEADER_LIMITS,
  updateHeaderProblem,
} from "./update-header.ts";

const ok: HeaderFields = {
  federationId: "fed-1",
  clientId: "",
  updateId: "r1-abc",
  contentHash: "AB".repeat(32),
  adapterConfigJson: "{}",
  metrics: { loss: 0.4, "eval/acc": 0.9 },
};

describe("update header limits", () => {
  it("accept a header within every limit, upper-case hash included", () => {
    assert.equal(updateHeaderProblem(ok), undefined);
    assert.equal(normalizeContentHash("AB".repeat(32)), "ab".repeat(32));
    assert.equal(normalizeContentHash("ab".repeat(31)), undefined);
    assert.match(contentHashProblem("zz") ?? "", /content_hash "zz" must be a SHA-256 as 64 hex digits/);
  });

  it("name the first field over its limit, quoting a short prefix only", () => {
    const big = "y".repeat(200_000);
    const cases: [Partial<HeaderFields>, string, RegExp][] = [
      [{ federationId: big }, "federation_id", /\(200000 characters\)/],
      [{ clientId: "a/b" }, "client_id", /client_id "a\/b"/],
      [{ updateId: big }, "update_id", /\(200000 characters\)/],
      [{ contentHash: big }, "content_hash", /64 hex digits/],
      [{ adapterConfigJson: big }, "adapter_config_json", /200000 bytes, above the limit of 65536/],
      [{ metrics: { [big]: 1 } }, "metrics", /metrics name "y+"… \(200000 characters\)/],
      [{ metrics: { __proto__x: 1, "": 2 } }, "metrics", /metrics name/],
      [{ metrics: { loss: Number.NaN } }, "metrics", /metric "loss" is NaN/],
      [
        {
          metrics: Object.fromEntries(
            Array.from({ length: UPDATE_HEADER_LIMITS.metrics + 1 }, (_, i) => [`m${i}`, i]),
          ),
        },
        "metrics",
        /65 entries, above the limit of 64/,
      ],
    ];
    for (const [change, field, pattern] of cases) {
      const bad = updateHeaderProblem({ ...ok, ...change });
      assert.equal(bad?.field, field, JSON.stringify(Object.keys(change)));
      assert.match(bad.problem, pattern);
      assert.ok(bad.problem.length < 200, `${field}: ${bad.problem.length} characters`);
    }
  });
});
