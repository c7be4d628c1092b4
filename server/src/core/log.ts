/**
 * The log port of the round logic: `@tributary/protocol`'s one `Log`
 * interface (a message plus structured fields), implemented by pino in
 * `telemetry/pino-log.ts`. Secrets (tokens) are never passed as fields.
 */
export { type Log, type LogFields, silentLog } from "@tributary/protocol";
