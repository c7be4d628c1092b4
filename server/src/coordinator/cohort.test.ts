import assert from "node:assert/strict";
import { test } from "node:test";
import { canOpenRound, cohortSizeFor, selectCohort } from "./cohort.ts";
import { testFederation } from "./testing/fixtures.ts";

test("cohorts follow the policy and rotate deterministically", () => {
  const base = testFederation().policy;
  const ids = ["e", "c", "a", "d", "b"];
  assert.deepEqual(selectCohort(base, ids, 1), ["a", "b", "c", "d", "e"]);
  const two = { ...base, cohortSize: 2 };
  assert.deepEqual(selectCohort(two, ids, 1), ["a", "b"]);
  assert.deepEqual(selectCohort(two, ids, 2), ["c", "d"]);
  assert.deepEqual(selectCohort(two, ids, 3), ["a", "e"]);
  assert.deepEqual(selectCohort(two, [...ids].reverse(), 3), ["a", "e"]);
  assert.equal(cohortSizeFor({ ...base, cohortFraction: 0.5 }, 5), 3);
  assert.equal(cohortSizeFor({ ...base, cohortFraction: 0.5, cohortSize: 4 }, 5), 4);
  assert.equal(cohortSizeFor({ ...base, cohortSize: 9 }, 5), 5);
  assert.equal(cohortSizeFor({ ...base, quorum: 3, cohortFraction: 0.1 }, 5), 3);
  assert.equal(canOpenRound({ ...base, minClients: 1, quorum: 2 }, 1), false);
  assert.equal(canOpenRound({ ...base, minClients: 3 }, 3), true);
});
