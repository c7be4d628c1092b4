/**
 * The `Log` of `tributary serve`: pino JSON lines carrying the trace and
 * span id of the span active when the line is written (an RPC, an update, a
 * merge), so logs and traces join up: `time` (ISO), `level` (a name),
 * `name`, `msg`, then the fields.
 */
import { context, isSpanContextValid, trace } from "@opentelemetry/api";
import { type DestinationStream, pino } from "pino";
import { type Log, type LogFields, silentLog } from "../core/log.ts";

/** `trace_id`/`span_id` of the active span, when there is one. */
export function traceFields(): { trace_id?: string; span_id?: string } {
  const sc = trace.getSpan(context.active())?.spanContext();
  return sc !== undefined && isSpanContextValid(sc) ? { trace_id: sc.traceId, span_id: sc.spanId } : {};
}

/**
 * A pino logger behind the `Log` interface, at or above `level`
 * (`TRIBUTARY_LOG=info|warn|error|silent`), writing to `destination`
 * (stderr, synchronously, by default). Fields named like credentials are
 * redacted as a backstop; no caller passes tokens.
 *
 * @example
 * const log = pinoLog({ name: "tributary" });
 * log.info("round opened", { federation: "fed-1", round: 3 });
 */
export function pinoLog(opts: { name?: string; level?: string; destination?: DestinationStream } = {}): Log {
  const level = opts.level ?? process.env.TRIBUTARY_LOG ?? "info";
  if (level === "silent") return silentLog;
  const logger = pino(
    {
      name: opts.name,
      level: ["info", "warn", "error"].includes(level) ? level : "info",
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      mixin: traceFields,
      redact: { paths: ["token", "operatorToken", "authorization"], censor: "[redacted]" },
    },
    opts.destination ?? pino.destination({ fd: 2, sync: true }),
  );
  const emit = (lvl: "info" | "warn" | "error") => (message: string, fields?: LogFields) => {
    const errorField = fields?.error;
    const rest = errorField instanceof Error ? { ...fields, error: errorField.message } : (fields ?? {});
    logger[lvl](rest, message);
  };
  return { info: emit("info"), warn: emit("warn"), error: emit("error") };
}
