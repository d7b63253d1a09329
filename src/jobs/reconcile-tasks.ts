import type { AppDeps } from "../deps.ts";
import type { IttybitClient } from "../services/ittybit/index.ts";
import { applyTaskState, fetchTaskState } from "../services/ittybit-refetch.ts";
import { reconcileTasks } from "../services/reconciler.ts";
import { jobHandler } from "./handler.ts";
import { refetchTaskJobPayload } from "./queues.ts";

export function reconcileTasksHandler(deps: AppDeps, ittybit: IttybitClient) {
  return async () => {
    await reconcileTasks({ ...deps, ittybit }, deps.config.reconcileAfterSeconds);
  };
}

/**
 * The refetch-ittybit-task job: a delivery named this task but Ittybit could not be asked in
 * time. Asks now (with the client's full retries; a failure fails the job, which pg-boss retries)
 * and applies the answer like the webhook would have.
 */
export function refetchIttybitTaskHandler(deps: AppDeps, ittybit: IttybitClient) {
  return jobHandler(refetchTaskJobPayload, async ({ engineTaskId }) => {
    const state = await fetchTaskState(ittybit, engineTaskId);
    const outcome = await applyTaskState(deps, state, { refetchedBy: "refetch-ittybit-task" });
    deps.logger.info({ engineTaskId, outcome }, "delivered task re-checked with Ittybit");
  });
}
