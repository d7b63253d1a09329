import type { AppDeps } from "../deps.ts";
import type { LocalRunnerDeps } from "../services/engines/local-task-runner.ts";
import { completeEpisodeHandler } from "./complete-episode.ts";
import { episodeDeadLetterHandler } from "./episode-dead-letter.ts";
import { processEpisodeHandler } from "./process-episode.ts";
import { publishEpisodeHandler } from "./publish-episode.ts";
import { QUEUES } from "./queues.ts";
import { reconcileTasksHandler } from "./reconcile-tasks.ts";
import { localTaskDeadLetterHandler, runLocalTaskHandler } from "./run-local-task.ts";

/**
 * Jobs that talk to Ittybit run a few at a time per process; each waits mostly on HTTP. New jobs
 * wake workers by NOTIFY; a retry that comes due does not, so the backstop poll is what picks it
 * up: every 2 s rather than pg-boss's default 30 s.
 */
const EPISODE_WORK = {
  localConcurrency: 4,
  notifyPollingIntervalSeconds: 2,
  pollingIntervalSeconds: 2,
};

/**
 * Registers the job handlers of the worker role. An episode whose engine is not configured here
 * fails its jobs (and is retried) until it is; without an Ittybit key there is nothing for the
 * reconciler to ask.
 */
export async function startWorkers(deps: AppDeps, localRunner: LocalRunnerDeps): Promise<void> {
  const { boss, logger } = deps;
  // ffmpeg uses every core: media tasks run PODFLOW_MEDIA_CONCURRENCY at a time per worker.
  await boss.work(
    QUEUES.runLocalTask,
    {
      ...EPISODE_WORK,
      localConcurrency: deps.config.local.concurrency,
      includeMetadata: true,
    },
    runLocalTaskHandler(localRunner),
  );
  await boss.work(
    QUEUES.localTaskDeadLetter,
    { ...EPISODE_WORK, includeMetadata: true },
    localTaskDeadLetterHandler(localRunner),
  );
  await boss.work(QUEUES.completeEpisode, EPISODE_WORK, completeEpisodeHandler(deps));
  await boss.work(
    QUEUES.episodeDeadLetter,
    { ...EPISODE_WORK, includeMetadata: true },
    episodeDeadLetterHandler(deps),
  );
  await boss.work(QUEUES.processEpisode, EPISODE_WORK, processEpisodeHandler(deps));
  // A scheduled publication is picked up by the poll within seconds of its time.
  await boss.work(QUEUES.publishEpisode, EPISODE_WORK, publishEpisodeHandler(deps));
  if (!deps.ittybit) {
    logger.info("reconcile-tasks is off: ITTYBIT_API_KEY is not set");
    logger.info("job workers started");
    return;
  }
  await boss.work(QUEUES.reconcileTasks, reconcileTasksHandler(deps, deps.ittybit));
  await boss.schedule(
    QUEUES.reconcileTasks,
    deps.config.reconcileCron,
    {},
    { singletonKey: "reconcile" },
  );
  logger.info("job workers started");
}
