/**
 * The store's state as a fold over journal events: `replay` is a pure
 * function of the events; `applyEvent` is its step, which the stores also run
 * after each durable append. Every step first checks that the event fits the
 * state (sequence, references, duplicates) and throws `JournalEventError`
 * otherwise, so the journal can only hold a consistent history.
 */
import type { ClientRecord, Federation, RoundRecord, RoundResult, UpdateRecord } from "../core/model.ts";
import {
  type FederationLeader,
  type Fenced,
  type JournalEvent,
  roundEntry,
  type StoreState,
} from "../core/store.ts";
import { describeUpload, JournalEventError } from "../core/store-errors.ts";

interface MutableRound {
  record: RoundRecord;
  result?: RoundResult;
  readonly updates: Map<string, UpdateRecord>;
}

interface MutableFederation {
  readonly federation: Federation;
  readonly clients: Map<string, ClientRecord>;
  readonly rounds: Map<number, MutableRound>;
  leader?: FederationLeader;
}

/** A `StoreState` that `applyEvent` can extend in place. */
export interface MutableStoreState extends StoreState {
  lastSeq: number;
  readonly federations: Map<string, MutableFederation>;
}

/** The state of an empty journal. */
export function emptyState(): MutableStoreState {
  return { lastSeq: 0, federations: new Map() };
}

function fail(message: string): never {
  throw new JournalEventError(message);
}

function federationOf(state: StoreState, id: string): MutableFederation {
  return (state as MutableStoreState).federations.get(id) ?? fail(`unknown federation "${id}"`);
}

function roundOf(state: StoreState, federationId: string, n: number): MutableRound {
  return (
    federationOf(state, federationId).rounds.get(n) ??
    fail(`${describeUpload({ federationId, round: n })}: unknown round`)
  );
}

/**
 * Throws `JournalEventError` unless `event` can follow `state`: `seq` is the
 * next one; the federation, round and client it refers to exist; it creates
 * nothing twice (federation, round number, a client's update in a round);
 * rounds open in increasing order; a round's result hash never changes once set.
 */
export function checkEvent(state: StoreState, event: JournalEvent): void {
  if (event.seq !== state.lastSeq + 1) {
    fail(`${event.type} has seq ${event.seq}, expected ${state.lastSeq + 1}`);
  }
  switch (event.type) {
    case "federation-created":
      if (state.federations.has(event.federation.id)) {
        fail(`federation "${event.federation.id}" already exists`);
      }
      return;
    case "client-enrolled":
      federationOf(state, event.client.federationId);
      return;
    case "leader-elected": {
      const { federationId, term, coordinatorId } = event.leader;
      const before = federationOf(state, federationId).leader;
      if (before !== undefined && term <= before.term) {
        fail(
          `federation "${federationId}": ${coordinatorId} elected in term ${term}, but ${before.coordinatorId} already leads in term ${before.term}`,
        );
      }
      return;
    }
    case "round-opened": {
      checkTerm(state, event.round.federationId, event);
      const { federationId, number } = event.round;
      const rounds = federationOf(state, federationId).rounds;
      const last = Math.max(0, ...rounds.keys());
      if (number <= last) {
        fail(`${describeUpload({ federationId, round: number })}: opened after round ${last}`);
      }
      return;
    }
    case "round-merged":
      checkTerm(state, event.round.federationId, event);
      if (event.result.contentHash !== event.round.resultHash) {
        fail(
          `${describeUpload({ federationId: event.round.federationId, round: event.round.number })}: merged result ${event.result.contentHash} is not the round's result ${event.round.resultHash}`,
        );
      }
      checkResultKept(state, event.round);
      return;
    case "update-accepted": {
      const u = event.update;
      const round = roundOf(state, u.federationId, u.round);
      if (!federationOf(state, u.federationId).clients.has(u.clientId)) {
        fail(`${describeUpload(u)}: client is not enrolled`);
      }
      if (round.record.state !== "open") {
        fail(`${describeUpload(u)}: the round is ${round.record.state}, not open`);
      }
      const existing = round.updates.get(u.clientId);
      if (existing !== undefined) {
        fail(`${describeUpload(u)}: the client already has update "${existing.updateId}" in this round`);
      }
      return;
    }
    default:
      // Every other round event (and the legacy round-updated): the round's new record.
      checkTerm(state, event.round.federationId, event);
      checkResultKept(state, event.round);
      return;
  }
}

/** Throws unless a round event of `federationId` was decided in its leader's current term (when it has one). */
function checkTerm(state: StoreState, federationId: string, event: JournalEvent & Fenced): void {
  const leader = federationOf(state, federationId).leader;
  if (leader !== undefined && event.term !== leader.term) {
    fail(
      `federation "${federationId}": ${event.type} decided in term ${event.term ?? "none"}, but ${leader.coordinatorId} leads in term ${leader.term}`,
    );
  }
}

/** Throws unless `next` keeps the result hash its round already has. */
function checkResultKept(state: StoreState, next: RoundRecord): void {
  const { federationId, number, resultHash } = next;
  const before = roundOf(state, federationId, number).record;
  if (before.resultHash !== undefined && resultHash !== before.resultHash) {
    fail(
      `${describeUpload({ federationId, round: number })}: result ${before.resultHash} cannot change to ${resultHash}`,
    );
  }
}

/** Checks `event` against `state` (see `checkEvent`) and applies it in place. */
export function applyEvent(state: MutableStoreState, event: JournalEvent): void {
  checkEvent(state, event);
  switch (event.type) {
    case "federation-created":
      state.federations.set(event.federation.id, {
        federation: event.federation,
        clients: new Map(),
        rounds: new Map(),
      });
      break;
    case "client-enrolled":
      federationOf(state, event.client.federationId).clients.set(event.client.clientId, event.client);
      break;
    case "leader-elected":
      federationOf(state, event.leader.federationId).leader = event.leader;
      break;
    case "round-opened":
      federationOf(state, event.round.federationId).rounds.set(event.round.number, {
        record: event.round,
        updates: new Map(),
      });
      break;
    case "round-merged": {
      const round = roundOf(state, event.round.federationId, event.round.number);
      round.record = event.round;
      round.result = event.result;
      break;
    }
    case "update-accepted":
      roundOf(state, event.update.federationId, event.update.round).updates.set(
        event.update.clientId,
        event.update,
      );
      break;
    default:
      // Every other round event (and the legacy round-updated): the round's new record.
      roundOf(state, event.round.federationId, event.round.number).record = event.round;
      break;
  }
  state.lastSeq = event.seq;
}

/**
 * Folds journal events into the state they describe. Pure: the events are
 * not modified and the result shares only their records.
 *
 * @example
 * const state = replay(events);
 * const open = [...state.federations.get("f")!.rounds.values()].filter((r) => r.record.state === "open");
 */
export function replay(events: Iterable<JournalEvent>): StoreState {
  const state = emptyState();
  for (const event of events) applyEvent(state, event);
  return state;
}

/** The accepted update of a client in a round, if any. */
export function acceptedUpdate(
  state: StoreState,
  federationId: string,
  round: number,
  clientId: string,
): UpdateRecord | undefined {
  return roundEntry(state, federationId, round)?.updates.get(clientId);
}
