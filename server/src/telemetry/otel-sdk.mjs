/**
 * Starting OpenTelemetry in the coordinator process: the ESM instrumentation
 * hook, the Node SDK with gRPC instrumentation, OTLP export when an endpoint
 * is configured, and a Prometheus scrape endpoint started on demand. Plain
 * JavaScript because it runs from `node --import`, before the TypeScript
 * loader is registered; `server/telemetry.mjs` (production) and the
 * telemetry test's preload both start the SDK through here.
 *
 * The running SDK is published as `globalThis[Symbol.for("tributary.telemetry")]`
 * (see `runtime.ts`), so `tributary serve` can tell whether telemetry is on,
 * open the scrape endpoint on its configured port and flush on shutdown.
 */
import { createServer } from "node:http";
import { register } from "node:module";

/** Where the running SDK is published for the rest of the process. */
export const RUNTIME_KEY = Symbol.for("tributary.telemetry");

/** Modules the ESM hook wraps: only those an instrumentation patches. */
export const INSTRUMENTED_MODULES = ["@grpc/grpc-js"];

/**
 * Registers import-in-the-middle's loader hook for `INSTRUMENTED_MODULES`.
 * Under ESM, an `import` of `@grpc/grpc-js` is not seen by the `require`
 * hooks the instrumentation otherwise relies on: without this hook the
 * process runs fine and records no gRPC span at all. Call it before anything
 * imports `@grpc/grpc-js`.
 */
export function registerInstrumentationHook() {
  register("@opentelemetry/instrumentation/hook.mjs", import.meta.url, {
    data: { include: INSTRUMENTED_MODULES },
  });
}

/**
 * @typedef {object} OtelOptions
 * @property {string} [serviceName] resource `service.name` (default: `OTEL_SERVICE_NAME`, else `tributary-coordinator`)
 * @property {string} [otlpEndpoint] OTLP/HTTP base URL (default: `OTEL_EXPORTER_OTLP_ENDPOINT`); absent = no OTLP export
 * @property {import("@opentelemetry/sdk-trace-base").SpanProcessor[]} [spanProcessors] extra span processors (tests)
 * @property {import("@opentelemetry/sdk-metrics").IMetricReader[]} [metricReaders] extra metric readers (tests)
 * @property {number} [metricExportIntervalMs] OTLP metric export interval (default: `OTEL_METRIC_EXPORT_INTERVAL`, else 15 s)
 */

/**
 * @typedef {object} MetricsEndpoint
 * @property {number} port the bound port
 * @property {string} url `http://host:port/metrics`
 * @property {() => Promise<void>} close
 */

/**
 * @typedef {object} OtelRuntime
 * @property {string} serviceName
 * @property {string | undefined} otlpEndpoint
 * @property {(port: number, host?: string) => Promise<MetricsEndpoint>} serveMetrics opens the Prometheus scrape endpoint (`/metrics`; port 0 = any free one)
 * @property {() => Promise<void>} shutdown flushes and stops the SDK (idempotent)
 */

/** Spans are recorded (so log lines carry trace ids) even when nothing exports them. */
const keepSpans = {
  onStart() {},
  onEnd() {},
  forceFlush: async () => {},
  shutdown: async () => {},
};

/**
 * Starts the Node SDK (once per process) and publishes its runtime handle.
 *
 * @param {OtelOptions} [options]
 * @returns {Promise<OtelRuntime>}
 *
 * @example
 * registerInstrumentationHook();
 * const otel = await startOtelSdk();
 * const metrics = await otel.serveMetrics(9464, "127.0.0.1");
 */
export async function startOtelSdk(options = {}) {
  const existing = /** @type {OtelRuntime | undefined} */ (
    /** @type {Record<symbol, unknown>} */ (globalThis)[RUNTIME_KEY]
  );
  if (existing !== undefined) return existing;
  const [{ NodeSDK }, { GrpcInstrumentation }, { PrometheusExporter }, { resourceFromAttributes }] =
    await Promise.all([
      import("@opentelemetry/sdk-node"),
      import("@opentelemetry/instrumentation-grpc"),
      import("@opentelemetry/exporter-prometheus"),
      import("@opentelemetry/resources"),
    ]);
  const serviceName = options.serviceName ?? (process.env.OTEL_SERVICE_NAME || "tributary-coordinator");
  const otlpEndpoint = options.otlpEndpoint ?? (process.env.OTEL_EXPORTER_OTLP_ENDPOINT || undefined);
  const prometheus = new PrometheusExporter({ preventServerStart: true });
  const spanProcessors = [...(options.spanProcessors ?? [])];
  const metricReaders = [prometheus, ...(options.metricReaders ?? [])];
  if (otlpEndpoint !== undefined) {
    const [
      { OTLPTraceExporter },
      { OTLPMetricExporter },
      { BatchSpanProcessor },
      { PeriodicExportingMetricReader },
    ] = await Promise.all([
      import("@opentelemetry/exporter-trace-otlp-proto"),
      import("@opentelemetry/exporter-metrics-otlp-proto"),
      import("@opentelemetry/sdk-trace-base"),
      import("@opentelemetry/sdk-metrics"),
    ]);
    // The exporters read the rest of OTEL_EXPORTER_OTLP_* (headers, per-signal URLs) themselves.
    const base = otlpEndpoint.replace(/\/+$/, "");
    spanProcessors.push(new BatchSpanProcessor(new OTLPTraceExporter({ url: `${base}/v1/traces` })));
    metricReaders.push(
      new PeriodicExportingMetricReader({
        exporter: new OTLPMetricExporter({ url: `${base}/v1/metrics` }),
        exportIntervalMillis:
          options.metricExportIntervalMs ?? (Number(process.env.OTEL_METRIC_EXPORT_INTERVAL) || 15_000),
      }),
    );
  }
  if (spanProcessors.length === 0) spanProcessors.push(keepSpans);
  const sdk = new NodeSDK({
    // No automatic resource detection: the process detector would put the
    // command line (and so a --nats-url password) into every export and into
    // the unauthenticated /metrics; these attributes are all it needs.
    autoDetectResources: false,
    resource: resourceFromAttributes({
      "service.name": serviceName,
      "process.pid": process.pid,
      "process.runtime.name": "nodejs",
      "process.runtime.version": process.versions.node,
    }),
    spanProcessors,
    metricReaders,
    // Logs stay JSON lines on stderr (with trace ids); no OTLP log export.
    logRecordProcessors: [],
    instrumentations: [new GrpcInstrumentation()],
  });
  sdk.start();

  /** @type {Set<import("node:http").Server>} */
  const servers = new Set();
  /** @type {Promise<void> | undefined} */
  let stopping;
  /** @type {OtelRuntime} */
  const runtime = {
    serviceName,
    otlpEndpoint,
    async serveMetrics(port, host = "127.0.0.1") {
      const server = createServer((req, res) => {
        const path = new URL(req.url ?? "/", "http://localhost").pathname;
        if (req.method === "GET" && path === "/metrics") {
          prometheus.getMetricsRequestHandler(req, res);
          return;
        }
        res.statusCode = 404;
        res.end("not found: the metrics are at /metrics\n");
      });
      await new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen({ port, host }, () => resolve(undefined));
      });
      // Never what keeps the process alive.
      server.unref();
      servers.add(server);
      const address = server.address();
      const bound = typeof address === "object" && address !== null ? address.port : port;
      const shown = host.includes(":") ? `[${host}]` : host;
      return {
        port: bound,
        url: `http://${shown}:${bound}/metrics`,
        close: () =>
          new Promise((resolve) => {
            servers.delete(server);
            server.close(() => resolve());
          }),
      };
    },
    shutdown() {
      stopping ??= (async () => {
        for (const server of servers) server.close();
        servers.clear();
        await sdk.shutdown().catch(() => {});
      })();
      return stopping;
    },
  };
  /** @type {Record<symbol, unknown>} */ (globalThis)[RUNTIME_KEY] = runtime;
  // Last spans and metrics out when the process ends on its own.
  process.once("beforeExit", () => void runtime.shutdown());
  return runtime;
}
