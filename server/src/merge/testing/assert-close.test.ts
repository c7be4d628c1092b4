import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { assertClose, relFrobError } from "./assert-close.ts";

describe("assertClose", () => {
  it("passes within atol + rtol · |expected|", () => {
    assertClose([1, 2, 0], [1 + 1e-7, 2, 1e-9], { rtol: 1e-6, atol: 1e-8 });
    assertClose([Number.NaN], [Number.NaN]);
  });

  it("fails naming the worst index and both values", () => {
    assert.throws(
      () => assertClose([1, 2, 3, 4], [1, 2.1, 3, 5], { rtol: 1e-3, what: "merged" }),
      /merged: 2 of 4 entries not close.*worst at index 3: actual 4, expected 5/,
    );
    assert.throws(() => assertClose([1, 2], [1]), /length 2 differs from expected 1/);
    assert.throws(() => assertClose([Number.NaN], [1]), /index 0/);
    assert.throws(() => assertClose([1], [Number.NaN]), /index 0/);
  });
});

describe("relFrobError", () => {
  it("is ‖a − b‖ / ‖b‖, or ‖a − b‖ when b = 0", () => {
    assert.equal(relFrobError([3, 4], [0, 0]), 5);
    assert.equal(relFrobError([1, 1], [1, 1]), 0);
    assert.ok(Math.abs(relFrobError([1, 2], [1, 0]) - 2) < 1e-15);
  });
});
