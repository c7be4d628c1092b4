// Types of otel-preload.mjs for the TypeScript round script.
import type { MetricReader } from "@opentelemetry/sdk-metrics";
import type { InMemorySpanExporter } from "@opentelemetry/sdk-trace-base";
import type { TelemetryRuntime } from "../../server/src/telemetry/runtime.ts";

export declare const spans: InMemorySpanExporter;
export declare const metricReader: MetricReader;
export declare const runtime: TelemetryRuntime;
