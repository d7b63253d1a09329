import { context, trace } from "@opentelemetry/api";
import pino, { type Logger } from "pino";
import type { Config } from "./config.ts";
import { currentRequestId } from "./request-context.ts";

/**
 * Structured JSON logs; a line written for an HTTP request has its `requestId`. Secrets never
 * reach a log line: these paths are censored wherever they appear.
 */
export function createLogger(
  config: Pick<Config, "logLevel">,
  /** Where the lines go; standard output when omitted (tests collect them). */
  destination?: pino.DestinationStream,
): Logger {
  const options: pino.LoggerOptions = {
    level: config.logLevel,
    base: { service: "podflow" },
    // Every line written while an HTTP request is handled carries its id (src/request-context.ts).
    // With tracing on, the line also names its trace and span, to find one from the other.
    mixin: () => {
      const requestId = currentRequestId();
      const span = trace.getSpanContext(context.active());
      const ids = requestId ? { requestId } : {};
      return span && trace.isSpanContextValid(span)
        ? { ...ids, traceId: span.traceId, spanId: span.spanId }
        : ids;
    },
    redact: {
      paths: [
        "authorization",
        "*.authorization",
        "headers.authorization",
        "*.headers.authorization",
        "apiKey",
        "*.apiKey",
        "token",
        "*.token",
        "password",
        "*.password",
      ],
      censor: "[redacted]",
    },
  };
  return destination ? pino(options, destination) : pino(options);
}

export type { Logger };
