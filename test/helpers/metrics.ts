/**
 * Coordinator telemetry whose metrics a test reads back: an in-memory pull
 * reader on a real OpenTelemetry SDK meter.
 */
import { type DataPoint, MeterProvider, MetricReader } from "@opentelemetry/sdk-metrics";
import type { Telemetry } from "../../server/src/core/telemetry.ts";
import { createTelemetry, type TelemetryOptions } from "../../server/src/telemetry/telemetry.ts";

class PullReader extends MetricReader {
  protected async onForceFlush() {}
  protected async onShutdown() {}
}

/** Telemetry for `startFixture({ telemetry })` and a reader of its metrics. */
export interface RecordedMetrics {
  readonly telemetry: Telemetry;
  /** The data points of metric `name` now (none when it was never recorded); histograms' values are objects. */
  points<V = number>(name: string): Promise<DataPoint<V>[]>;
  /** The sum of metric `name`'s points whose attributes include `attrs`. */
  sum(name: string, attrs?: Record<string, string>): Promise<number>;
}

/** Creates telemetry recording into an in-memory reader (`tracer` and `now` as `createTelemetry` takes them). */
export function recordedMetrics(opts: Omit<TelemetryOptions, "meter"> = {}): RecordedMetrics {
  const reader = new PullReader();
  const meter = new MeterProvider({ readers: [reader] }).getMeter("test");
  const points = async <V = number>(name: string) => {
    const { resourceMetrics } = await reader.collect();
    const found = resourceMetrics.scopeMetrics
      .flatMap((s) => s.metrics)
      .find((m) => m.descriptor.name === name);
    return (found?.dataPoints ?? []) as DataPoint<V>[];
  };
  return {
    telemetry: createTelemetry({ ...opts, meter }),
    points,
    async sum(name, attrs = {}) {
      let total = 0;
      for (const p of await points(name)) {
        if (Object.entries(attrs).every(([k, v]) => p.attributes[k] === v)) total += p.value;
      }
      return total;
    },
  };
}
