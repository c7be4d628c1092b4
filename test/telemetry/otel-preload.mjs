// Preload of the telemetry test's child process (see test/telemetry.test.ts):
// the same start-up as `server/telemetry.mjs` — ESM instrumentation hook,
// then the Node SDK with gRPC instrumentation — plus in-memory exporters the
// round script reads back. Must run before anything imports @grpc/grpc-js.
import { MetricReader } from "@opentelemetry/sdk-metrics";
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { registerInstrumentationHook, startOtelSdk } from "../../server/src/telemetry/otel-sdk.mjs";

/** A pull reader: the script calls `collect()` when it wants the metrics. */
class CollectingReader extends MetricReader {
  async onForceFlush() {}
  async onShutdown() {}
}

export const spans = new InMemorySpanExporter();
export const metricReader = new CollectingReader();

registerInstrumentationHook();
export const runtime = await startOtelSdk({
  serviceName: "tributary-coordinator",
  spanProcessors: [new SimpleSpanProcessor(spans)],
  metricReaders: [metricReader],
});
