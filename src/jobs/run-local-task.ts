import type { JobWithMetadata } from "pg-boss";
import { ProcessingTask } from "../entities/processing-task.entity.ts";
import {
  type LocalRunnerDeps,
  localTaskEvent,
  runLocalTask,
} from "../services/engines/local-task-runner.ts";
import { applyTaskEvent } from "../services/task-events.ts";
import { originalError } from "./episode-dead-letter.ts";
import { jobHandler } from "./handler.ts";
import { localTaskJobPayload } from "./queues.ts";

/** run-local-task: one media task on this worker; pg-boss aborts `job.signal` on stop. */
export function runLocalTaskHandler(deps: LocalRunnerDeps) {
  return jobHandler(localTaskJobPayload, ({ taskId }, job: JobWithMetadata<unknown>) =>
    runLocalTask(deps, taskId, {
      signal: job.signal,
      lastAttempt: job.retryCount >= job.retryLimit,
    }),
  );
}

/**
 * A run-local-task job that spent its retries without its handler recording an end — its worker
 * died each time (a missed heartbeat) — lands here: the task is FAILED with the last error, so
 * the episode ends instead of waiting for ever.
 */
export function localTaskDeadLetterHandler(deps: LocalRunnerDeps) {
  return jobHandler(localTaskJobPayload, async ({ taskId }, job: JobWithMetadata<unknown>) => {
    const task = await deps.orm.em.fork().findOne(ProcessingTask, { id: taskId });
    if (!task) return;
    const lastError = await originalError(deps.boss, job);
    const attempts = (job.sourceRetryCount ?? 0) + 1;
    const reason = `Podflow gave up on the task after ${attempts} attempts${lastError ? `: ${lastError}` : ""}`;
    await applyTaskEvent(deps, localTaskEvent(task, "FAILED", { error: reason }), null);
  });
}
