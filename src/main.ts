import { existsSync } from "node:fs";
import { startPodflow } from "./app.ts";
import { ConfigError, loadConfig } from "./config.ts";
import { createLogger } from "./logger.ts";

// An optional .env beside the project; real environment variables win over it.
if (existsSync(".env")) process.loadEnvFile(".env");

let config: ReturnType<typeof loadConfig>;
try {
  config = loadConfig();
} catch (error) {
  if (error instanceof ConfigError) {
    console.error(`podflow: ${error.message}`);
    process.exit(1);
  }
  throw error;
}

const logger = createLogger(config);
const podflow = await startPodflow(config, { logger }).catch((error: unknown) => {
  logger.fatal({ err: error }, "Podflow could not start");
  process.exit(1);
});

let signals = 0;
const shutdown = (signal: NodeJS.Signals) => {
  signals += 1;
  if (signals > 1) {
    logger.warn({ signal }, "second signal: exiting without waiting");
    process.exit(130);
  }
  logger.info({ signal }, "stopping: finishing in-flight requests and jobs");
  podflow.stop().then(
    () => process.exit(0),
    (error: unknown) => {
      logger.error({ err: error }, "Podflow did not stop cleanly");
      process.exit(1);
    },
  );
};
process.on("SIGINT", shutdown);
process.on("SIGTERM", shutdown);
