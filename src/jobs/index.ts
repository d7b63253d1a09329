import type { AppDeps } from "../deps.ts";
import type { LocalRunnerDeps } from "../services/engines/local-task-runner.ts";
import { completeEpisodeHandler } from "./complete-episode.ts";
import { episodeDeadLetterHandler } from "./episode-dead-letter.ts";
import { type JobsInHand, trackJobsInHand } from "./in-hand.ts";
import { pruneWebhookDeliveriesHandler, sweepStuckEpisodesHandler } from "./maintenance.ts";
import { processEpisodeHandler } from "./process-episode.ts";
import { publishEpisodeHandler } from "./publish-episode.ts";
import {
  publicationDeadLetterHandler,
  publishToTransistorHandler,
  publishToYouTubeHandler,
} from "./publish-to-destinations.ts";
import { QUEUES } from "./queues.ts";
import { reconcileTasksHandler, refetchIttybitTaskHandler } from "./reconcile-tasks.ts";
import { localTaskDeadLetterHandler, runLocalTaskHandler } from "./run-local-task.ts";

/**
 * Jobs that talk to Ittybit run a few at a time per process; each waits mostly on HTTP. New jobs
 * wake workers by NOTIFY; a retry that comes due does not, so the backstop poll is what picks it
 * up: every 2 s rather than pg-boss's default 30 s.
 */
const EPISODE_POLLING = {
  localConcurrency: 4,
  notifyPollingIntervalSeconds: 2,
  pollingIntervalSeconds: 2,
};
const EPISODE_WORK = {
  ...EPISODE_POLLING,
  // Each job's retry count and last failure: a job resumed after a crash is logged (in-hand.ts).
  includeMetadata: true as const,
};

/**
 * Registers the job handlers of the worker role. An episode whose engine is not configured here
 * fails its jobs (and is retried) until it is; without an Ittybit key there is nothing for the
 * reconciler to ask. Returns what the stop hands back (see in-hand.ts).
 */
export async function startWorkers(
  deps: AppDeps,
  localRunner: LocalRunnerDeps,
): Promise<JobsInHand> {
  const { boss, logger } = deps;
  const jobs = trackJobsInHand({ boss, logger, metrics: deps.metrics });
  // ffmpeg uses every core: media tasks run PODFLOW_MEDIA_CONCURRENCY at a time per worker. A
  // stop hands back at once the jobs that wait on ffmpeg or on Ittybit (an encode cannot finish
  // within its grace; an answer may take a minute of retries): each stops on its signal, and
  // runs again on a living worker, where invariant 4 makes the repeat harmless. Dead letters
  // only write to the database, and finish within the grace.
  await boss.work(
    QUEUES.runLocalTask,
    { ...EPISODE_WORK, localConcurrency: deps.config.local.concurrency },
    jobs.track(QUEUES.runLocalTask, runLocalTaskHandler(localRunner), { handBackOnStop: true }),
  );
  await boss.work(
    QUEUES.localTaskDeadLetter,
    EPISODE_WORK,
    jobs.track(QUEUES.localTaskDeadLetter, localTaskDeadLetterHandler(localRunner)),
  );
  await boss.work(
    QUEUES.completeEpisode,
    EPISODE_WORK,
    jobs.track(QUEUES.completeEpisode, completeEpisodeHandler(deps), { handBackOnStop: true }),
  );
  await boss.work(
    QUEUES.episodeDeadLetter,
    EPISODE_WORK,
    jobs.track(QUEUES.episodeDeadLetter, episodeDeadLetterHandler(deps)),
  );
  await boss.work(
    QUEUES.processEpisode,
    EPISODE_WORK,
    jobs.track(QUEUES.processEpisode, processEpisodeHandler(deps), { handBackOnStop: true }),
  );
  // A scheduled publication is picked up by the poll within seconds of its time.
  await boss.work(
    QUEUES.publishEpisode,
    EPISODE_WORK,
    jobs.track(QUEUES.publishEpisode, publishEpisodeHandler(deps)),
  );
  // Uploads to Transistor and YouTube wait on the network for minutes: a stop hands them back,
  // and the next run continues from what the publication recorded (YouTube from its byte).
  await boss.work(
    QUEUES.publishToTransistor,
    EPISODE_WORK,
    jobs.track(QUEUES.publishToTransistor, publishToTransistorHandler(deps), {
      handBackOnStop: true,
    }),
  );
  await boss.work(
    QUEUES.publishToYouTube,
    EPISODE_WORK,
    jobs.track(QUEUES.publishToYouTube, publishToYouTubeHandler(deps), { handBackOnStop: true }),
  );
  await boss.work(
    QUEUES.publicationDeadLetter,
    EPISODE_WORK,
    jobs.track(QUEUES.publicationDeadLetter, publicationDeadLetterHandler(deps)),
  );
  await startMaintenance(deps, jobs);
  if (!deps.ittybit) {
    logger.info("reconcile-tasks is off: ITTYBIT_API_KEY is not set");
    logger.info("job workers started");
    return jobs;
  }
  await boss.work(
    QUEUES.refetchIttybitTask,
    { ...EPISODE_POLLING, includeMetadata: true },
    jobs.track(QUEUES.refetchIttybitTask, refetchIttybitTaskHandler(deps, deps.ittybit)),
  );
  await boss.work(
    QUEUES.reconcileTasks,
    { includeMetadata: true },
    jobs.track(QUEUES.reconcileTasks, reconcileTasksHandler(deps, deps.ittybit)),
  );
  await boss.schedule(
    QUEUES.reconcileTasks,
    deps.config.reconcileCron,
    {},
    { singletonKey: "reconcile" },
  );
  logger.info("job workers started");
  return jobs;
}

/**
 * Housekeeping on PODFLOW_MAINTENANCE_CRON (src/services/maintenance.ts): old webhook deliveries
 * are pruned and stuck episodes failed. Each schedule makes one job per tick for the whole
 * installation, whichever worker's clock fires it.
 */
async function startMaintenance(deps: AppDeps, jobs: JobsInHand): Promise<void> {
  const { boss } = deps;
  await boss.work(
    QUEUES.pruneWebhookDeliveries,
    { includeMetadata: true },
    jobs.track(QUEUES.pruneWebhookDeliveries, pruneWebhookDeliveriesHandler(deps)),
  );
  await boss.work(
    QUEUES.sweepStuckEpisodes,
    { includeMetadata: true },
    jobs.track(QUEUES.sweepStuckEpisodes, sweepStuckEpisodesHandler(deps)),
  );
  const cron = deps.config.maintenance.cron;
  await boss.schedule(QUEUES.pruneWebhookDeliveries, cron, {}, { singletonKey: "prune" });
  await boss.schedule(QUEUES.sweepStuckEpisodes, cron, {}, { singletonKey: "sweep" });
}
