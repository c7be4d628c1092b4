import assert from "node:assert/strict";
import { test } from "node:test";
import type { JournalEvent, UpdateAccepted } from "../core/store.ts";
import { JournalEventError } from "../core/store-errors.ts";
import { parseJournalEvent } from "./journal-codec.ts";
import { acceptedUpdate, replay } from "./journal-state.ts";
import { client, federation, round, updateBytes, updateRecord } from "./testing/fixtures.ts";

/** An event without `seq` and `at`, the legacy `round-updated` included (replay still reads it). */
type Draft = JournalEvent extends infer E ? (E extends JournalEvent ? Omit<E, "seq" | "at"> : never) : never;

function seal(drafts: Draft[]): JournalEvent[] {
  return drafts.map((d, i) => ({ ...d, seq: i + 1, at: 1000 + i }) as JournalEvent);
}

const key = { federationId: "fed-1", round: 1, clientId: "alice", updateId: "u-1" };
/** A journal written before the typed round events (`round-updated`). */
const history: Draft[] = [
  { type: "federation-created", federation: federation() },
  { type: "client-enrolled", client: client("alice") },
  { type: "client-enrolled", client: client("bob") },
  { type: "round-opened", round: round(1) },
  { type: "update-accepted", update: updateRecord(key, updateBytes(1)) },
  { type: "round-updated", round: round(1, "fed-1", { state: "merging", quorumAt: 5 }) },
  { type: "round-updated", round: round(1, "fed-1", { state: "published", resultHash: "a".repeat(64) }) },
  { type: "round-opened", round: round(2) },
];

test("replay folds federations, clients, latest round records and accepted updates", () => {
  const events = seal(history);
  const frozen = JSON.stringify(events);
  const state = replay(events);
  assert.equal(JSON.stringify(events), frozen, "replay must not modify its input");
  assert.equal(state.lastSeq, 8);
  const fed = state.federations.get("fed-1");
  assert.ok(fed);
  assert.deepEqual([...fed.clients.keys()], ["alice", "bob"]);
  assert.deepEqual([...fed.rounds.keys()], [1, 2]);
  const r1 = fed.rounds.get(1)!;
  assert.equal(r1.record.state, "published");
  assert.equal(r1.record.resultHash, "a".repeat(64));
  assert.deepEqual([...r1.updates.keys()], ["alice"]);
  assert.equal(acceptedUpdate(state, "fed-1", 1, "alice")?.updateId, "u-1");
  assert.equal(acceptedUpdate(state, "fed-1", 2, "alice"), undefined);
  assert.equal(fed.rounds.get(2)!.record.state, "open");
  assert.equal(replay([]).lastSeq, 0);
});

test("replay rejects events that do not fit the state", () => {
  const bad: [string, Draft[], RegExp][] = [
    [
      "unknown federation",
      [{ type: "client-enrolled", client: client("x", "nope") }],
      /unknown federation "nope"/,
    ],
    ["duplicate federation", [history[0], history[0]], /already exists/],
    [
      "round of unknown federation",
      [{ type: "round-opened", round: round(1, "nope") }],
      /unknown federation/,
    ],
    [
      "rounds out of order",
      [history[0], { type: "round-opened", round: round(2) }, { type: "round-opened", round: round(1) }],
      /round 1: opened after round 2/,
    ],
    ["update of unknown round", [history[0], history[1], history[4]], /round 1: unknown round/],
    ["update of a client not enrolled", [history[0], history[3], history[4]], /client "alice".*not enrolled/],
    [
      "second update of a client in a round",
      [
        ...history.slice(0, 5),
        { type: "update-accepted", update: { ...updateRecord(key, updateBytes(2)), updateId: "u-2" } },
      ],
      /update "u-2": the client already has update "u-1"/,
    ],
    [
      "result hash changed",
      [
        ...history.slice(0, 7),
        { type: "round-updated", round: round(1, "fed-1", { resultHash: "b".repeat(64) }) },
      ],
      /result a+ cannot change/,
    ],
  ];
  for (const [what, drafts, pattern] of bad) {
    assert.throws(
      () => replay(seal(drafts)),
      (err: unknown) => err instanceof JournalEventError && pattern.test(err.message),
      what,
    );
  }
  const gap = seal(history.slice(0, 2));
  gap[1] = { ...gap[1], seq: 3 };
  assert.throws(() => replay(gap), /client-enrolled has seq 3, expected 2/);
});

test("parseJournalEvent checks structure and ids", () => {
  const ok = seal(history)[4] as UpdateAccepted;
  assert.deepEqual(parseJournalEvent(JSON.parse(JSON.stringify(ok))), ok);
  assert.throws(() => parseJournalEvent([]), /not a JSON object/);
  assert.throws(() => parseJournalEvent({ ...ok, type: "nope" }), /unknown event type "nope"/);
  assert.throws(() => parseJournalEvent({ ...ok, seq: 0 }), /seq 0/);
  assert.throws(() => parseJournalEvent({ ...ok, at: "soon" }), /at "soon"/);
  assert.throws(() => parseJournalEvent({ ...ok, update: undefined }), /missing "update"/);
  assert.throws(
    () => parseJournalEvent({ ...ok, update: { ...ok.update, clientId: "../x" } }),
    (err: unknown) => err instanceof JournalEventError && /invalid client_id "..\/x"/.test(err.message),
  );
  assert.throws(() => parseJournalEvent({ ...ok, update: { ...ok.update, sha256: "XY" } }), /sha256 "XY"/);
});

/** The same round told by the typed round events: what coordinators journal now. */
const typed: Draft[] = [
  ...history.slice(0, 5),
  { type: "round-quorum", round: round(1, "fed-1", { quorumAt: 5 }) },
  { type: "round-closed", round: round(1, "fed-1", { state: "merging", quorumAt: 5, closedAt: 6 }) },
  {
    type: "round-merged",
    round: round(1, "fed-1", { state: "published", quorumAt: 5, closedAt: 6, resultHash: "a".repeat(64) }),
    result: {
      federationId: "fed-1",
      round: 1,
      contentHash: "a".repeat(64),
      size: 10,
      method: "from",
      clients: ["alice"],
      weights: [1],
      mergedAt: 7,
    },
  },
  {
    type: "round-published",
    round: round(1, "fed-1", {
      state: "published",
      quorumAt: 5,
      closedAt: 6,
      resultHash: "a".repeat(64),
      published: true,
    }),
  },
];

test("typed round events fold into the round's record, and round-merged journals its result", () => {
  const events = seal(typed);
  for (const e of events) assert.deepEqual(parseJournalEvent(JSON.parse(JSON.stringify(e))), e);
  const r1 = replay(events).federations.get("fed-1")!.rounds.get(1)!;
  assert.equal(r1.record.state, "published");
  assert.equal(r1.record.published, true);
  assert.equal(r1.result?.contentHash, "a".repeat(64));
  assert.deepEqual(r1.result?.weights, [1]);
  assert.equal(replay(seal(history)).federations.get("fed-1")!.rounds.get(1)!.result, undefined);
});

test("a merged result must be the round's, and its hash never changes", () => {
  const merged = typed[7] as Extract<Draft, { type: "round-merged" }>;
  const wrong = { ...merged, result: { ...merged.result, contentHash: "b".repeat(64) } };
  assert.throws(
    () => replay(seal([...typed.slice(0, 7), wrong])),
    /merged result b+ is not the round's result a+/,
  );
  const changed = {
    type: "round-published" as const,
    round: { ...merged.round, resultHash: "c".repeat(64) },
  };
  assert.throws(() => replay(seal([...typed.slice(0, 8), changed])), /result a+ cannot change to c+/);
  const noResult = JSON.parse(JSON.stringify(seal(typed)[7]));
  delete noResult.result;
  assert.throws(() => parseJournalEvent(noResult), /round-merged seq 8: missing "result" object/);
});

test("an elected leader fences the federation's round events to its term; updates need an open round", () => {
  const base: Draft[] = [
    { type: "federation-created", federation: federation() },
    { type: "client-enrolled", client: client("alice") },
    { type: "leader-elected", leader: { federationId: "fed-1", coordinatorId: "c-a", term: 1 } },
    { type: "round-opened", round: round(1), term: 1 },
  ];
  const state = replay(seal(base));
  assert.deepEqual(state.federations.get("fed-1")?.leader, {
    federationId: "fed-1",
    coordinatorId: "c-a",
    term: 1,
  });
  const refused = (extra: Draft[], pattern: RegExp) =>
    assert.throws(
      () => replay(seal([...base, ...extra])),
      (e) => e instanceof JournalEventError && pattern.test(e.message),
    );
  // A round event without the term, or from an older term, is a deposed leader's.
  refused(
    [{ type: "round-closed", round: round(1, "fed-1", { state: "merging" }) }],
    /decided in term none, but c-a leads in term 1/,
  );
  refused(
    [
      { type: "leader-elected", leader: { federationId: "fed-1", coordinatorId: "c-b", term: 2 } },
      { type: "round-closed", round: round(1, "fed-1", { state: "merging" }), term: 1 },
    ],
    /decided in term 1, but c-b leads in term 2/,
  );
  refused(
    [{ type: "leader-elected", leader: { federationId: "fed-1", coordinatorId: "c-b", term: 1 } }],
    /c-b elected in term 1, but c-a already leads in term 1/,
  );
  // The new leader's events count.
  const led = replay(
    seal([
      ...base,
      { type: "leader-elected", leader: { federationId: "fed-1", coordinatorId: "c-b", term: 2 } },
      { type: "round-closed", round: round(1, "fed-1", { state: "merging" }), term: 2 },
    ]),
  );
  assert.equal(led.federations.get("fed-1")?.rounds.get(1)?.record.state, "merging");
  // An update accepted after its round closed would never be merged: refused.
  refused(
    [
      { type: "round-closed", round: round(1, "fed-1", { state: "merging" }), term: 1 },
      { type: "update-accepted", update: updateRecord(key, updateBytes(1)) },
    ],
    /the round is merging, not open/,
  );
  assert.throws(
    () =>
      parseJournalEvent({
        type: "leader-elected",
        seq: 1,
        at: 1,
        leader: { federationId: "f", coordinatorId: "c", term: 0 },
      }),
    /term 0 is not an integer ≥ 1/,
  );
});
