import assert from "node:assert/strict";
import { test } from "node:test";
import type { RoundRecord } from "../core/model.ts";
import { canOpenRound, cohortSizeFor, selectCohort, whyNoRound } from "./cohort.ts";
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

test("whyNoRound says what a round waits for, and nothing while one runs", () => {
  const policy = { ...testFederation().policy, minClients: 1, quorum: 2 };
  const round = (state: "open" | "merging" | "published" | "aborted") =>
    ({
      federationId: "f",
      number: 3,
      state,
      openedAt: 0,
      deadlineAt: 1,
      cohort: ["a", "b"],
      extended: false,
    }) as RoundRecord;
  assert.equal(whyNoRound(policy, undefined, 1), "1 of 2 clients connected; a round opens when 2 are");
  assert.equal(
    whyNoRound(policy, round("published"), 0),
    "0 of 2 clients connected; a round opens when 2 are",
  );
  assert.equal(whyNoRound(policy, round("published"), 2), "a round is about to open");
  assert.equal(whyNoRound(policy, round("open"), 0), undefined);
  assert.equal(whyNoRound(policy, round("merging"), 0), undefined);
  assert.match(
    whyNoRound(policy, round("aborted"), 2) ?? "",
    /^round 3 was aborted; .*tributary admin start-round/,
  );
  assert.match(
    whyNoRound({ ...policy, autoAdvance: false }, round("published"), 2) ?? "",
    /auto_advance is off/,
  );
});
