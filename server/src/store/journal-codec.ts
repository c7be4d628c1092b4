/**
 * Journal events as JSON lines: the structural check applied to every line
 * read back (and to every event before it is written, so that whatever is
 * journaled can be replayed), and the encoding.
 */

import type { JournalEvent, JournalEventType } from "../core/store.ts";
import { JournalEventError } from "../core/store-errors.ts";
import { checkId, checkRound, checkSha256 } from "./paths.ts";

const PAYLOAD: Readonly<Record<JournalEventType, string>> = {
  "federation-created": "federation",
  "client-enrolled": "client",
  "leader-elected": "leader",
  "round-opened": "round",
  "round-extended": "round",
  "round-quorum": "round",
  "round-closed": "round",
  "round-merged": "round",
  "round-failed": "round",
  "round-aborted": "round",
  "round-published": "round",
  "round-updated": "round",
  "update-accepted": "update",
};

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isEventType(v: unknown): v is JournalEventType {
  return typeof v === "string" && Object.hasOwn(PAYLOAD, v);
}

/** Runs `check`, turning its error into a `JournalEventError` prefixed with `what`. */
function field<T>(what: string, check: () => T): T {
  try {
    return check();
  } catch (err) {
    throw new JournalEventError(`${what}: ${err instanceof Error ? err.message : String(err)}`, {
      cause: err,
    });
  }
}

/** Checks a round record's ids and state. */
function checkRoundPayload(where: string, p: Record<string, unknown>): void {
  field(where, () => checkId("federation_id", p.federationId));
  field(where, () => checkRound(p.number));
  if (typeof p.state !== "string") throw new JournalEventError(`${where}: round has no state`);
}

/**
 * Checks that `value` (a parsed JSON line) is a journal event: a known
 * `type`, integer `seq` ≥ 1, finite `at`, and a payload whose ids are valid
 * path components. Throws `JournalEventError` saying what is wrong.
 */
export function parseJournalEvent(value: unknown): JournalEvent {
  if (!isRecord(value)) throw new JournalEventError("not a JSON object");
  const { type, seq, at } = value;
  if (!isEventType(type)) throw new JournalEventError(`unknown event type ${JSON.stringify(type)}`);
  if (typeof seq !== "number" || !Number.isSafeInteger(seq) || seq < 1) {
    throw new JournalEventError(`${type}: seq ${JSON.stringify(seq)} is not an integer ≥ 1`);
  }
  if (typeof at !== "number" || !Number.isFinite(at)) {
    throw new JournalEventError(`${type}: at ${JSON.stringify(at)} is not epoch milliseconds`);
  }
  const payloadName = PAYLOAD[type];
  const p = value[payloadName];
  if (!isRecord(p)) throw new JournalEventError(`${type}: missing "${payloadName}" object`);
  const where = `${type} seq ${seq}`;
  switch (type) {
    case "federation-created":
      field(where, () => checkId("federation_id", p.id));
      break;
    case "client-enrolled":
      field(where, () => checkId("federation_id", p.federationId));
      field(where, () => checkId("client_id", p.clientId));
      break;
    case "leader-elected":
      field(where, () => checkId("federation_id", p.federationId));
      if (typeof p.coordinatorId !== "string" || p.coordinatorId === "")
        throw new JournalEventError(`${where}: leader has no coordinatorId`);
      if (typeof p.term !== "number" || !Number.isSafeInteger(p.term) || p.term < 1)
        throw new JournalEventError(`${where}: term ${JSON.stringify(p.term)} is not an integer ≥ 1`);
      break;
    case "round-merged": {
      const result = value.result;
      if (!isRecord(result)) throw new JournalEventError(`${where}: missing "result" object`);
      field(where, () => checkSha256("result content hash", result.contentHash));
      if (!Array.isArray(result.clients) || !Array.isArray(result.weights)) {
        throw new JournalEventError(`${where}: result has no clients and weights`);
      }
      checkRoundPayload(where, p);
      break;
    }
    case "update-accepted":
      field(where, () => checkId("federation_id", p.federationId));
      field(where, () => checkRound(p.round));
      field(where, () => checkId("client_id", p.clientId));
      field(where, () => checkId("update_id", p.updateId));
      field(where, () => checkSha256("sha256", p.sha256));
      if (typeof p.size !== "number" || !Number.isSafeInteger(p.size) || p.size < 0) {
        throw new JournalEventError(`${where}: size ${JSON.stringify(p.size)} is not a byte count`);
      }
      if (typeof p.configJson !== "string")
        throw new JournalEventError(`${where}: configJson is not a string`);
      break;
    default:
      // round-opened and every other round event: a round record.
      checkRoundPayload(where, p);
      break;
  }
  return value as unknown as JournalEvent;
}

/** One journal line: the event's JSON and a newline. */
export function encodeJournalLine(event: JournalEvent): Uint8Array {
  return new TextEncoder().encode(`${JSON.stringify(event)}\n`);
}
