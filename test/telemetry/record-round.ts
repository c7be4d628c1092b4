/**
 * Child process of `test/telemetry.test.ts`, started with
 * `--import ./test/telemetry/otel-preload.mjs --import tsx`: runs one real
 * round (nats-server, gRPC server on port 0, three clients, one rejected
 * upload), scrapes the Prometheus endpoint, and writes what the SDK recorded
 * — finished spans, collected metrics, the scrape, the log lines — as JSON
 * to the file named by its first argument.
 */
import { createHash } from "node:crypto";
import { writeFile } from "node:fs/promises";
import type { HrTime } from "@opentelemetry/api";
import type { DataPoint, Histogram } from "@opentelemetry/sdk-metrics";
import { watchResults } from "@tributary/client/nats";
import { pinoLog } from "../../server/src/telemetry/pino-log.ts";
import { startFixture } from "../helpers/federation.ts";
import { upload } from "../helpers/grpc-calls.ts";
import { metricReader, runtime, spans } from "./otel-preload.mjs";

/** One finished span, flattened. */
export interface SpanDump {
  readonly name: string;
  readonly kind: number;
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId?: string;
  readonly attributes: Record<string, unknown>;
  readonly links: { traceId: string; spanId: string }[];
  readonly status: number;
  readonly events: string[];
  readonly startMs: number;
  readonly endMs: number;
}

/** One data point of a collected metric. */
export interface PointDump {
  readonly attributes: Record<string, unknown>;
  /** Counter/gauge value, or a histogram's count. */
  readonly value: number;
  readonly sum?: number;
}

/** What the script writes. */
export interface RoundDump {
  readonly federationId: string;
  /** Bytes the clients sent, refused upload included. */
  readonly sentBytes: number;
  /** Every token handed out (none may appear in a log line). */
  readonly tokens: string[];
  readonly spans: SpanDump[];
  readonly metrics: Record<string, { unit: string; points: PointDump[] }>;
  readonly scrape: { status: number; contentType: string; body: string };
  readonly logs: Record<string, unknown>[];
}

const ms = (t: HrTime) => t[0] * 1000 + t[1] / 1e6;

async function until(what: string, ok: () => boolean, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const out = process.argv[2];
if (out === undefined) throw new Error("usage: record-round.ts OUT.json");
const logs: Record<string, unknown>[] = [];
const log = pinoLog({
  name: "tributary",
  level: "info",
  destination: { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) },
});
const fx = await startFixture({ clients: 3, method: "from", rank: 4, log });
const metricsEndpoint = await runtime.serveMetrics(0, "127.0.0.1");
const watch = watchResults({ servers: fx.nats.url, federationId: fx.federationId });
try {
  await fx.joinAll();
  const [c1] = fx.clients;
  const spec = (c: (typeof fx.clients)[number], i: number) => ({
    federationId: fx.federationId,
    round: 1,
    clientId: c.id,
    updateId: `u-${c.id}`,
    samples: 100 * (i + 1),
    configJson: c.configJson,
    bytes: c.bytes,
  });
  // Refused: the declared sha256 is not the bytes'.
  const refused = await upload(fx.client, c1.token, {
    ...spec(c1, 0),
    updateId: "bad-sha",
    contentHash: createHash("sha256").update("something else").digest("hex"),
  }).then(
    () => false,
    () => true,
  );
  if (!refused) throw new Error("the update with a wrong sha256 was accepted");
  await Promise.all(fx.clients.map((c, i) => upload(fx.client, c.token, spec(c, i))));
  const announced = await watch[Symbol.asyncIterator]().next();
  if (announced.done === true || announced.value.round !== 1) throw new Error("round 1 was not announced");
  await until(
    "round 1 marked announced",
    () => fx.service.coordinator.rounds(fx.federationId)[0]?.round.published === true,
  );

  const res = await fetch(metricsEndpoint.url);
  const scrape = {
    status: res.status,
    contentType: res.headers.get("content-type") ?? "",
    body: await res.text(),
  };
  const { resourceMetrics, errors } = await metricReader.collect();
  if (errors.length > 0) throw new AggregateError(errors, "metric collection failed");
  const metrics: RoundDump["metrics"] = {};
  for (const scope of resourceMetrics.scopeMetrics) {
    for (const metric of scope.metrics) {
      const points = (metric.dataPoints as DataPoint<number | Histogram>[]).map((p) =>
        typeof p.value === "number"
          ? { attributes: { ...p.attributes }, value: p.value }
          : { attributes: { ...p.attributes }, value: p.value.count, sum: p.value.sum },
      );
      metrics[metric.descriptor.name] = { unit: metric.descriptor.unit, points };
    }
  }
  await watch.close();
  await fx.close();
  await metricsEndpoint.close();
  const dump: RoundDump = {
    federationId: fx.federationId,
    sentBytes: c1.bytes.length + fx.clients.reduce((n, c) => n + c.bytes.length, 0),
    tokens: [fx.operatorToken, ...fx.clients.map((c) => c.token)],
    spans: spans.getFinishedSpans().map((s) => ({
      name: s.name,
      kind: s.kind,
      traceId: s.spanContext().traceId,
      spanId: s.spanContext().spanId,
      ...(s.parentSpanContext !== undefined ? { parentSpanId: s.parentSpanContext.spanId } : {}),
      attributes: { ...s.attributes },
      links: s.links.map((l) => ({ traceId: l.context.traceId, spanId: l.context.spanId })),
      status: s.status.code,
      events: s.events.map((e) => e.name),
      startMs: ms(s.startTime),
      endMs: ms(s.endTime),
    })),
    metrics,
    scrape,
    logs,
  };
  await writeFile(out, JSON.stringify(dump));
} finally {
  await watch.close().catch(() => {});
  await fx.close().catch(() => {});
  await runtime.shutdown();
}
