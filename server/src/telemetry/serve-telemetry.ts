/**
 * Telemetry as `tributary serve` runs it: when the process was started with
 * `node --import ./server/telemetry.mjs` (as `npm start` does), open the
 * Prometheus scrape endpoint and flush on shutdown; otherwise say, once, how
 * to turn telemetry on.
 */
import type { Log } from "../core/log.ts";
import { type MetricsEndpoint, telemetryRuntime } from "./runtime.ts";

/** Default Prometheus scrape port (the OpenTelemetry exporter's usual one). */
export const DEFAULT_METRICS_PORT = 9464;

/** Telemetry of a running `tributary serve`. */
export interface ServeTelemetry {
  /** Whether the OpenTelemetry SDK is running in this process. */
  readonly enabled: boolean;
  /** `http://host:port/metrics`, when the scrape endpoint is open. */
  readonly metricsUrl?: string;
  /** Where OTLP traces and metrics go, when configured. */
  readonly otlpEndpoint?: string;
  /** Closes the scrape endpoint and flushes the SDK. */
  close(): Promise<void>;
}

/**
 * Opens the scrape endpoint on `metricsPort` (0 = none) when the SDK is running.
 *
 * @example
 * const telemetry = await startServeTelemetry({ metricsPort: 9464, metricsHost: "127.0.0.1", log });
 * // … serve …
 * await telemetry.close();
 */
export async function startServeTelemetry(opts: {
  metricsPort: number;
  metricsHost: string;
  log: Log;
}): Promise<ServeTelemetry> {
  const otel = telemetryRuntime();
  if (otel === undefined) {
    opts.log.info(
      "telemetry off: start with `node --import ./server/telemetry.mjs server/bin/tributary.mjs serve` (as `npm start` does) for traces, metrics and a Prometheus endpoint",
    );
    return { enabled: false, close: async () => {} };
  }
  let endpoint: MetricsEndpoint | undefined;
  if (opts.metricsPort !== 0) {
    try {
      endpoint = await otel.serveMetrics(opts.metricsPort, opts.metricsHost);
    } catch (err) {
      throw new Error(
        `cannot serve metrics on ${opts.metricsHost}:${opts.metricsPort} (${(err as Error).message}); choose another --metrics-port, or "off"`,
        { cause: err },
      );
    }
  }
  opts.log.info("telemetry on", {
    service: otel.serviceName,
    metrics: endpoint?.url ?? "off",
    otlp: otel.otlpEndpoint ?? "off (set OTEL_EXPORTER_OTLP_ENDPOINT)",
  });
  return {
    enabled: true,
    ...(endpoint !== undefined ? { metricsUrl: endpoint.url } : {}),
    ...(otel.otlpEndpoint !== undefined ? { otlpEndpoint: otel.otlpEndpoint } : {}),
    async close() {
      await endpoint?.close();
      await otel.shutdown();
    },
  };
}
