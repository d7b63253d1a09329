import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { type RunningPodflow, type StartOptions, startPodflow } from "../../src/app.ts";
import { type Config, loadConfig } from "../../src/config.ts";
import { freePort } from "../../src/free-port.ts";

/**
 * Starts a real Podflow (HTTP server, pg-boss, workers) on the given database, on a free port.
 * `env` takes the same variables as production; `overrides` patches the parsed config.
 * The caller stops it (which also removes its data directory).
 */
export async function startTestPodflow(options: {
  databaseUrl: string;
  env?: Record<string, string>;
  overrides?: Partial<Config>;
  start?: StartOptions;
}): Promise<RunningPodflow> {
  const dataDir = await mkdtemp(path.join(tmpdir(), "podflow-app-"));
  const config = {
    ...loadConfig({
      NODE_ENV: "test",
      DATABASE_URL: options.databaseUrl,
      PODFLOW_DATA_DIR: dataDir,
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "silent",
      // A fixed port (rather than 0) so that PUBLIC_URL, and the webhook URL built from it, is
      // known before the server starts.
      PORT: String(await freePort()),
      ...options.env,
    }),
    ...options.overrides,
  };
  const podflow = await startPodflow(config, { shutdownGraceMs: 2_000, ...options.start });
  return {
    ...podflow,
    stop: async () => {
      await podflow.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
