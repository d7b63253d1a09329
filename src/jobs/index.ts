import type { AppDeps } from "../deps.ts";

/**
 * Registers the job handlers of the worker role. pg-boss's own maintenance and scheduling run
 * in worker processes too (see startBoss).
 */
export async function startWorkers(deps: AppDeps): Promise<void> {
  deps.logger.info("job workers started");
}
