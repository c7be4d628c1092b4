/**
 * The one rule for each kind of id, shared by both SDKs, the coordinator's
 * intake, its store and the docs. Ids become path components of the
 * coordinator's store and (federation ids) NATS subject tokens, so:
 *
 * - federation id: 1–128 of `A-Z a-z 0-9 _ -` (no `.`: a NATS subject token);
 * - client id, update id: 1–128 of `A-Z a-z 0-9 . _ -`, not `.` or `..`.
 *
 * The Python client (`tributary_client.ids`) states the same rules.
 */

/** The kinds of id a request carries. */
export type IdKind = "federation_id" | "client_id" | "update_id";

/** Each kind's pattern. */
export const ID_PATTERNS: Readonly<Record<IdKind, RegExp>> = {
  federation_id: /^[A-Za-z0-9_-]{1,128}$/,
  client_id: /^[A-Za-z0-9._-]{1,128}$/,
  update_id: /^[A-Za-z0-9._-]{1,128}$/,
};

/** Each kind's rule, in words, for messages and docs. */
export const ID_RULES: Readonly<Record<IdKind, string>> = {
  federation_id: "1 to 128 of A-Z a-z 0-9 _ - (no '.': it is a NATS subject token)",
  client_id: "1 to 128 of A-Z a-z 0-9 . _ -, not '.' or '..'",
  update_id: "1 to 128 of A-Z a-z 0-9 . _ -, not '.' or '..'",
};

/** Characters of a client's value quoted in a message, at most. */
const QUOTED = 40;

/** `"abc…" (300 characters)`: a bounded quotation of a value for messages and logs. */
export function quoteValue(value: unknown): string {
  if (typeof value !== "string") return value === undefined ? "nothing" : typeof value;
  if (value.length <= QUOTED) return JSON.stringify(value);
  return `${JSON.stringify(value.slice(0, QUOTED))}… (${value.length} characters)`;
}

/** Whether `value` is a valid id of `kind`. */
export function isValidId(kind: IdKind, value: unknown): value is string {
  return typeof value === "string" && ID_PATTERNS[kind].test(value) && value !== "." && value !== "..";
}

/**
 * What is wrong with `value` as an id of `kind`, naming the field and the
 * rule, or `undefined` when it is valid.
 *
 * @example
 * idProblem("update_id", "a:b"); // 'update_id "a:b" must be 1 to 128 of A-Z a-z 0-9 . _ -, not \'.\' or \'..\''
 */
export function idProblem(kind: IdKind, value: unknown): string | undefined {
  return isValidId(kind, value) ? undefined : `${kind} ${quoteValue(value)} must be ${ID_RULES[kind]}`;
}
