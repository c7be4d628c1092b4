import assert from "node:assert/strict";
import { test } from "node:test";
import type { BufferedRounds, RoundRecord } from "../core/model.ts";
import { foldCoefficients, foldRound, stalenessWeight } from "./buffered-rounds.ts";
import { StaleRoundError } from "./errors.ts";
import { testFederation, updateRecord } from "./testing/fixtures.ts";

const buffered: BufferedRounds = {
  size: 2,
  staleness: { kind: "polynomial", a: 0.5 },
  serverLr: 0.8,
  maxStaleness: 2,
};
const open = (number: number): RoundRecord => ({
  federationId: "f",
  number,
  state: "open",
  openedAt: 0,
  deadlineAt: 1,
  extended: false,
  cohort: [],
});

test("staleness functions: constant, (1 + τ)^−a, and the hinge", () => {
  assert.equal(stalenessWeight({ kind: "constant" }, 7), 1);
  assert.equal(stalenessWeight({ kind: "polynomial", a: 0.5 }, 3), 0.5);
  assert.equal(stalenessWeight({ kind: "hinge", a: 2, b: 1 }, 1), 1);
  assert.equal(stalenessWeight({ kind: "hinge", a: 2, b: 1 }, 3), 1 / 5);
});

test("an update is folded in the open round, within the max staleness; refused past it, or ahead of it", () => {
  const fed = testFederation();
  assert.equal(foldRound(fed, buffered, 5, open(7)), 7);
  assert.throws(
    () => foldRound(fed, buffered, 4, open(7)),
    (err: unknown) => {
      assert.ok(err instanceof StaleRoundError);
      assert.match(
        err.message,
        /round 4 is 3 rounds behind the open round, beyond this federation's max staleness 2/,
      );
      assert.equal(err.currentRound, 7);
      return true;
    },
  );
  assert.throws(() => foldRound(fed, buffered, 8, open(7)), /round 8 is not open yet/);
  assert.throws(() => foldRound(fed, buffered, 7, { ...open(7), state: "merging" }), StaleRoundError);
});

test("fold coefficients: η s(τ_i) w_i with the buffer's sample weights", () => {
  const fresh = { ...updateRecord("a", 3), samples: 100, baseRound: 3 };
  const stale = { ...updateRecord("b", 3), samples: 300, baseRound: 0 };
  const [c1, c2] = foldCoefficients(buffered, [fresh, stale]);
  assert.ok(Math.abs(c1 - 0.8 * 1 * 0.25) < 1e-15);
  assert.ok(Math.abs(c2 - 0.8 * 0.5 * 0.75) < 1e-15);
  // Without sample counts: equal weights.
  const [e1] = foldCoefficients(buffered, [
    { ...fresh, samples: 0 },
    { ...stale, samples: 0 },
  ]);
  assert.ok(Math.abs(e1 - 0.4) < 1e-15);
});
