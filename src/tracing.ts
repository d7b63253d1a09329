import { context, propagation, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BatchSpanProcessor, TracerProvider } from "@opentelemetry/sdk-trace";
import type { Logger } from "pino";
import { PODFLOW_VERSION } from "./version.ts";

/** The name Podflow's own spans are made under (pg-boss makes its own, as `pg-boss`). */
export const TRACER_NAME = "podflow";

export interface TracingSettings {
  /** OTEL_EXPORTER_OTLP_ENDPOINT: the collector's base URL (spans go to `/v1/traces`). Unset: off. */
  otlpEndpoint: string | undefined;
  /** OTEL_SERVICE_NAME, default `podflow`. */
  serviceName: string;
}

export interface Tracing {
  /** Sends what is left and unregisters the globals. */
  shutdown(): Promise<void>;
}

/**
 * OpenTelemetry tracing, only when OTEL_EXPORTER_OTLP_ENDPOINT is set: a tracer provider sending
 * spans over OTLP/HTTP (JSON) in batches, W3C trace context (an incoming `traceparent` is
 * continued), and the async context that makes spans nest. Registered globally, so pg-boss's own
 * spans (send, fetch, process) flow too. Without the setting nothing is registered and every
 * span Podflow starts is a no-op. The exporter reads the other OTEL_EXPORTER_OTLP_* variables
 * (headers, timeout) itself.
 */
export function startTracing(settings: TracingSettings, logger: Logger): Tracing | null {
  if (!settings.otlpEndpoint) return null;
  const provider = new TracerProvider({
    resource: resourceFromAttributes({
      "service.name": settings.serviceName,
      "service.version": PODFLOW_VERSION,
    }),
    spanProcessors: [
      new BatchSpanProcessor({
        exporter: new OTLPTraceExporter({ url: `${settings.otlpEndpoint}/v1/traces` }),
      }),
    ],
  });
  const contextManager = new AsyncLocalStorageContextManager().enable();
  if (!trace.setGlobalTracerProvider(provider)) {
    logger.warn("an OpenTelemetry tracer provider was already registered; Podflow's is not used");
    contextManager.disable();
    return null;
  }
  context.setGlobalContextManager(contextManager);
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  logger.info({ endpoint: settings.otlpEndpoint }, "OpenTelemetry tracing to the OTLP endpoint");
  return {
    async shutdown() {
      await provider.shutdown().catch((error: unknown) => {
        logger.warn({ err: error }, "could not send the last spans");
      });
      trace.disable();
      context.disable();
      propagation.disable();
    },
  };
}
