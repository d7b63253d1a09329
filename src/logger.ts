import pino, { type Logger } from "pino";
import type { Config } from "./config.ts";

/** Structured JSON logs. Secrets never reach a log line: these paths are censored wherever they appear. */
export function createLogger(config: Pick<Config, "logLevel">): Logger {
  return pino({
    level: config.logLevel,
    base: { service: "podflow" },
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
  });
}

export type { Logger };
