import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SpanStatusCode } from "@opentelemetry/api";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { recordedMetrics } from "../../../test/helpers/metrics.ts";
import type { RoundRecord } from "../core/model.ts";
import { pinoLog } from "./pino-log.ts";
import { reasonOf } from "./telemetry.ts";

function harness() {
  const spans = new InMemorySpanExporter();
  const tracer = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }).getTracer("t");
  let clock = 1_000_000;
  const recorded = recordedMetrics({ tracer, now: () => clock });
  const metric = (name: string) => recorded.points<unknown>(name);
  return { telemetry: recorded.telemetry, spans, metric, advance: (ms: number) => (clock += ms) };
}

const round = (over: Partial<RoundRecord> = {}): RoundRecord => ({
  federationId: "fed",
  number: 7,
  state: "open",
  openedAt: 1_000_000,
  deadlineAt: 1_060_000,
  extended: false,
  cohort: ["a", "b", "c"],
  ...over,
});

describe("telemetry facade", () => {
  it("spans a round from open to published and counts it once", async () => {
    const { telemetry, spans, metric, advance } = harness();
    telemetry.roundChanged({ round: round(), method: "from", accepted: 0 });
    advance(4_000);
    telemetry.roundChanged({ round: round({ quorumAt: 1_003_000 }), method: "from", accepted: 2 });
    telemetry.roundChanged({
      round: round({ quorumAt: 1_003_000, state: "merging" }),
      method: "from",
      accepted: 2,
      stragglers: 1,
    });
    const published = round({ quorumAt: 1_003_000, state: "published", resultHash: "ab" });
    telemetry.roundChanged({ round: published, method: "from", accepted: 2 });
    telemetry.roundChanged({ round: published, method: "from", accepted: 2 });
    const [open, span] = spans.getFinishedSpans();
    assert.equal(open.name, "tributary.round.open");
    assert.equal(span.name, "tributary.round");
    assert.equal(open.parentSpanContext?.spanId, span.spanContext().spanId);
    assert.equal(span.attributes["tributary.outcome"], "published");
    assert.equal(span.attributes["tributary.stragglers"], 1);
    assert.deepEqual(
      span.events.map((e) => e.name),
      ["quorum", "closed"],
    );
    const rounds = await metric("tributary_rounds_total");
    assert.deepEqual(
      rounds.map((p) => [p.attributes, p.value]),
      [[{ federation: "fed", outcome: "published" }, 1]],
    );
    const quorum = (await metric("tributary_time_to_quorum_seconds"))[0].value as { sum: number };
    assert.equal(quorum.sum, 3);
    const duration = (await metric("tributary_round_duration_seconds"))[0].value as { sum: number };
    assert.equal(duration.sum, 4);
  });

  it("does not count a round it only sees ended (a restart), and marks failures", async () => {
    const { telemetry, spans, metric } = harness();
    telemetry.roundChanged({ round: round({ state: "published" }), method: "from", accepted: 3 });
    assert.equal((await metric("tributary_rounds_total")).length, 0);
    telemetry.roundResumed(round({ number: 8, state: "merging" }), "from");
    telemetry.roundChanged({
      round: round({ number: 8, state: "failed", failure: "merge failed: x" }),
      method: "from",
      accepted: 1,
    });
    const [failed] = spans.getFinishedSpans();
    assert.equal(failed.attributes["tributary.resumed"], true);
    assert.equal(failed.status.code, SpanStatusCode.ERROR);
    assert.equal(failed.status.message, "merge failed: x");
    const rounds = await metric("tributary_rounds_total");
    assert.deepEqual(rounds[0].attributes, { federation: "fed", outcome: "failed" });
  });

  it("counts a refused update by error class, its bytes, and ends running rounds on close", async () => {
    const { telemetry, spans, metric } = harness();
    telemetry.roundChanged({ round: round(), method: "from", accepted: 0 });
    const u = telemetry.update({ federationId: "fed", round: 7, clientId: "a", updateId: "u1" });
    await u.step("validate", () => undefined);
    await assert.rejects(
      u.step("upload", async () => {
        u.received(100);
        throw new RangeError("too big");
      }),
    );
    u.fail(new RangeError("too big"));
    u.end("accepted"); // ignored: already finished
    telemetry.close();
    const names = spans.getFinishedSpans().map((s) => s.name);
    assert.deepEqual(names, [
      "tributary.round.open",
      "tributary.update.validate",
      "tributary.update.upload",
      "tributary.update",
      "tributary.round",
    ]);
    const updates = await metric("tributary_updates_total");
    assert.deepEqual(
      updates.map((p) => [p.attributes, p.value]),
      [[{ federation: "fed", result: "rejected", reason: "RangeError" }, 1]],
    );
    assert.equal((await metric("tributary_update_bytes_total"))[0].value, 100);
    assert.equal(spans.getFinishedSpans().at(-1)?.attributes["tributary.interrupted"], true);
  });

  it("keeps rejection reasons bounded", () => {
    assert.equal(reasonOf(new TypeError("x")), "TypeError");
    assert.equal(reasonOf(new Error("x")), "other");
    assert.equal(reasonOf("a string"), "other");
    const odd = new Error("x");
    odd.name = "round 17 of client-3";
    assert.equal(reasonOf(odd), "other");
  });
});

describe("pinoLog", () => {
  it("writes JSON lines, flattens errors, and redacts credentials", () => {
    const lines: Record<string, unknown>[] = [];
    const log = pinoLog({
      name: "t",
      level: "warn",
      destination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
    });
    log.info("dropped");
    log.warn("careful", { federation: "f", token: "trb_secret" });
    log.error("broke", { error: new Error("boom") });
    assert.equal(lines.length, 2);
    assert.equal(lines[0].level, "warn");
    assert.equal(lines[0].msg, "careful");
    assert.equal(lines[0].name, "t");
    assert.equal(lines[0].token, "[redacted]");
    assert.equal(typeof lines[0].time, "string");
    assert.equal(lines[1].error, "boom");
    assert.equal(lines[0].trace_id, undefined, "no span, no trace id");
  });
});
