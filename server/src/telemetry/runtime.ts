/**
 * The OpenTelemetry SDK as the rest of the process sees it: started (or not)
 * by `node --import ./server/telemetry.mjs` before any of this code loaded,
 * and published on `globalThis` by `otel-sdk.mjs`. Without the preload the
 * `@opentelemetry/api` calls in `telemetry.ts` are no-ops.
 */

/** The Prometheus scrape endpoint, once opened. */
export interface MetricsEndpoint {
  /** The bound port (useful with port 0). */
  readonly port: number;
  /** `http://host:port/metrics`. */
  readonly url: string;
  close(): Promise<void>;
}

/** The running SDK (see `otel-sdk.mjs`). */
export interface TelemetryRuntime {
  readonly serviceName: string;
  /** OTLP/HTTP endpoint traces and metrics are exported to; `undefined` = none. */
  readonly otlpEndpoint: string | undefined;
  /** Opens the Prometheus scrape endpoint (`GET /metrics`; port 0 = any free one). */
  serveMetrics(port: number, host?: string): Promise<MetricsEndpoint>;
  /** Flushes spans and metrics and stops the SDK (idempotent). */
  shutdown(): Promise<void>;
}

const RUNTIME_KEY = Symbol.for("tributary.telemetry");

/**
 * The SDK started by the preload, or `undefined` when the process runs
 * without telemetry.
 *
 * @example
 * const otel = telemetryRuntime();
 * if (otel !== undefined) await otel.serveMetrics(9464);
 */
export function telemetryRuntime(): TelemetryRuntime | undefined {
  return (globalThis as Record<symbol, unknown>)[RUNTIME_KEY] as TelemetryRuntime | undefined;
}
