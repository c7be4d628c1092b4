import assert from "node:assert/strict";
import { test } from "node:test";
import type { RoundInfo } from "./round-info.ts";
import { describeWaiting, waitingOf } from "./waiting.ts";

const round = (state: RoundInfo["state"], deadline?: Date): RoundInfo => ({
  federationId: "f",
  number: 3,
  state,
  acceptedUpdates: state === "open" ? 1 : 2,
  cohort: state === "open" ? ["a", "b", "c"] : ["a", "b"],
  ...(deadline !== undefined ? { deadline } : {}),
});

test("the same words as the Python client's describe_waiting", () => {
  const none = waitingOf(
    "round",
    undefined,
    { quorum: 2, reason: "1 of 2 clients connected; a round opens when 2 are" },
    0,
  );
  assert.equal(
    describeWaiting(none),
    "waiting for a round: no round open: 1 of 2 clients connected; a round opens when 2 are",
  );
  const open = waitingOf(
    "result",
    3,
    { quorum: 2, reason: "", round: round("open", new Date(1_252_000)) },
    1_000_000,
  );
  assert.deepEqual([open.awaiting, open.deadlineInMs, open.reason], [2, 252_000, undefined]);
  assert.equal(
    describeWaiting(open),
    "waiting for round 3's merged adapter: round 3 is open: 1/2 updates (quorum 2), 2 of 3 clients still to submit, 4m12s to the deadline",
  );
  assert.equal(
    describeWaiting(waitingOf("result", 3, { quorum: 2, reason: "", round: round("merging") }, 0)),
    "waiting for round 3's merged adapter: round 3 is merging 2 update(s)",
  );
});
