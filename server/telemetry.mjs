// OpenTelemetry for the coordinator, started before anything else:
//
//   node --import ./server/telemetry.mjs server/bin/tributary.mjs serve   (= npm start)
//
// Registers the ESM instrumentation hook (without it no gRPC span is
// recorded), then starts the Node SDK: gRPC spans, OTLP/HTTP export of
// traces and metrics when OTEL_EXPORTER_OTLP_ENDPOINT is set (e.g.
// http://127.0.0.1:4318), and the Prometheus exporter whose scrape endpoint
// `tributary serve` opens on --metrics-port / TRIBUTARY_METRICS_PORT
// (default 127.0.0.1:9464). TRIBUTARY_TELEMETRY=off skips all of it.
//
// Worker threads inherit `--import`: the merge workers skip it (they make no
// RPC and report through the main thread).
import { isMainThread } from "node:worker_threads";
import { registerInstrumentationHook, startOtelSdk } from "./src/telemetry/otel-sdk.mjs";

if (isMainThread && process.env.TRIBUTARY_TELEMETRY !== "off") {
  registerInstrumentationHook();
  await startOtelSdk();
}
