import type { PgBoss, WorkOptions } from "pg-boss";
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
import { QUEUES, type QueueName } from "./queues.ts";
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
  const work = workOn(boss, jobs);
  // ffmpeg uses every core: media tasks run PODFLOW_MEDIA_CONCURRENCY at a time per worker. A
  // stop hands back at once the jobs that wait on ffmpeg, on Ittybit or on an upload (an encode
  // cannot finish within its grace; an answer may take a minute of retries): each stops on its
  // signal, and runs again on a living worker, where invariant 4 makes the repeat harmless (a
  // publication continues from what it recorded: YouTube from its byte). Dead letters only write
  // to the database, and finish within the grace.
  const handBack = { handBackOnStop: true };
  await work(QUEUES.runLocalTask, runLocalTaskHandler(localRunner), {
    ...handBack,
    options: { ...EPISODE_WORK, localConcurrency: deps.config.local.concurrency },
  });
  await work(QUEUES.localTaskDeadLetter, localTaskDeadLetterHandler(localRunner));
  await work(QUEUES.completeEpisode, completeEpisodeHandler(deps), handBack);
  await work(QUEUES.episodeDeadLetter, episodeDeadLetterHandler(deps));
  await work(QUEUES.processEpisode, processEpisodeHandler(deps), handBack);
  // A scheduled publication is picked up by the poll within seconds of its time.
  await work(QUEUES.publishEpisode, publishEpisodeHandler(deps));
  await work(QUEUES.publishToTransistor, publishToTransistorHandler(deps), handBack);
  await work(QUEUES.publishToYouTube, publishToYouTubeHandler(deps), handBack);
  await work(QUEUES.publicationDeadLetter, publicationDeadLetterHandler(deps));
  await startMaintenance(deps, work);
  if (!deps.ittybit) {
    logger.info("reconcile-tasks is off: ITTYBIT_API_KEY is not set");
    logger.info("job workers started");
    return jobs;
  }
  await work(QUEUES.refetchIttybitTask, refetchIttybitTaskHandler(deps, deps.ittybit), {
    options: { ...EPISODE_POLLING, includeMetadata: true },
  });
  await work(QUEUES.reconcileTasks, reconcileTasksHandler(deps, deps.ittybit), {
    options: { includeMetadata: true },
  });
  await boss.schedule(
    QUEUES.reconcileTasks,
    deps.config.reconcileCron,
    {},
    { singletonKey: "reconcile" },
  );
  logger.info("job workers started");
  return jobs;
}

type Work = Parameters<JobsInHand["track"]>[1];
type WorkOn = (
  queue: QueueName,
  handler: Work,
  how?: { handBackOnStop?: boolean; options?: WorkOptions & { includeMetadata: true } },
) => Promise<string>;

/** Registers a queue's handler, tracked while in hand (in-hand.ts); episode pacing by default. */
function workOn(boss: PgBoss, jobs: JobsInHand): WorkOn {
  return (queue, handler, how = {}) =>
    boss.work(
      queue,
      how.options ?? EPISODE_WORK,
      jobs.track(queue, handler, { handBackOnStop: how.handBackOnStop }),
    );
}

/**
 * Housekeeping on PODFLOW_MAINTENANCE_CRON (src/services/maintenance.ts): old webhook deliveries
 * are pruned and stuck episodes failed. Each schedule makes one job per tick for the whole
 * installation, whichever worker's clock fires it.
 */
async function startMaintenance(deps: AppDeps, work: WorkOn): Promise<void> {
  const { boss } = deps;
  const options = { includeMetadata: true as const };
  await work(QUEUES.pruneWebhookDeliveries, pruneWebhookDeliveriesHandler(deps), { options });
  await work(QUEUES.sweepStuckEpisodes, sweepStuckEpisodesHandler(deps), { options });
  const cron = deps.config.maintenance.cron;
  await boss.schedule(QUEUES.pruneWebhookDeliveries, cron, {}, { singletonKey: "prune" });
  await boss.schedule(QUEUES.sweepStuckEpisodes, cron, {}, { singletonKey: "sweep" });
}
